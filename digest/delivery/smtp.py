"""SMTP transport: one connection per run, STARTTLS/SSL, AUTH, retries on 4xx.

The only module that imports :mod:`smtplib`. Failures are translated at this edge::

    4xx at any stage, refused/dropped connection, timeout
        → retried (exponential backoff + jitter, ``retries`` times), then
          TransientDeliveryError: try this digest again later
    5xx at RCPT or DATA
        → PermanentDeliveryError(code=…) at once; the connection stays usable (RSET)
    535 at AUTH, 5xx at MAIL FROM/EHLO/connect, TLS certificate or protocol errors,
    an extension the server lacks
        → plain DeliveryError: a configuration problem that no retry and no other
          recipient will fix, so the caller should stop the run and show the message
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Literal

from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from digest.delivery.base import BaseTransport
from digest.delivery.wire import message_bytes
from digest.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)

if TYPE_CHECKING:
    from digest.config.settings import Settings

log = logging.getLogger(__name__)

Security = Literal["none", "starttls", "ssl"]
MAX_RETRY_WAIT = 60.0  # seconds; caps the doubling so a long outage fails in bounded time

_STAGES: dict[type[smtplib.SMTPResponseException], str] = {
    smtplib.SMTPConnectError: "connect",
    smtplib.SMTPHeloError: "EHLO",
    smtplib.SMTPAuthenticationError: "AUTH",
    smtplib.SMTPSenderRefused: "MAIL FROM",
    smtplib.SMTPDataError: "DATA",
}


def server_options(settings: Settings) -> dict[str, Any]:
    """The ``smtp_*`` settings every SMTP client here takes (server, login, timeouts, retries)."""
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    if settings.smtp_username and password is None:
        raise ConfigError("smtp_username is set but smtp_password is not")
    return {
        "host": settings.smtp_host,
        "port": settings.smtp_port,
        "security": settings.smtp_security,
        "username": settings.smtp_username,
        "password": password,
        "timeout": settings.smtp_timeout,
        "retries": settings.smtp_retries,
        "retry_wait": settings.smtp_retry_wait,
    }


class SmtpTransport(BaseTransport):
    """Sends messages over one reused SMTP connection. Use as a context manager.

    ``retries`` extra attempts follow a transient failure, waiting ``retry_wait`` seconds
    and doubling (plus up to ``retry_wait`` of jitter); ``retry_wait=0`` retries at once.
    """

    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        retry_wait: float = 1.0,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(f"unknown SMTP security {security!r}")
        if retries < 0 or retry_wait < 0 or timeout <= 0:
            raise ValueError("retries and retry_wait must be >= 0, timeout > 0")
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.retries = retries
        self.retry_wait = retry_wait
        self.local_hostname = local_hostname
        self._ssl_context = ssl_context
        self._conn: smtplib.SMTP | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport:
        """Build the transport from ``smtp_*`` settings."""
        return cls(**server_options(settings))

    def __repr__(self) -> str:
        return f"SmtpTransport({self.host}:{self.port}, security={self.security})"

    # open() does nothing: the connection is opened lazily by the first send, so a run with
    # nothing to send never touches the server, and connection errors get the retry policy.

    def close(self) -> None:
        """QUIT politely and close the connection; errors on the way out are ignored."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if conn.sock is not None:
                conn.quit()
        except (smtplib.SMTPException, OSError):
            pass  # the server may already be gone; nothing left to deliver
        finally:
            conn.close()

    def send(self, message: EmailMessage, *, envelope_from: str, recipient: str) -> None:
        """Deliver ``message`` to ``recipient`` with ``envelope_from`` as MAIL FROM.

        Raises TransientDeliveryError after the retries are spent, PermanentDeliveryError
        on a 5xx at RCPT/DATA, DeliveryError on a configuration problem (see module doc).
        """
        message_id = str(message["Message-ID"] or "")
        self.send_bytes(
            message_bytes(message),
            envelope_from=envelope_from,
            recipient=recipient,
            message_id=message_id,
        )

    def send_bytes(
        self, data: bytes, *, envelope_from: str, recipient: str, message_id: str
    ) -> None:
        """Deliver prebuilt ``data`` as ``send`` does (same retries and errors)."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1),
            # wait_exponential + wait_random rather than wait_exponential_jitter, whose
            # arguments changed across tenacity releases (``initial`` is deprecated in 9.x).
            wait=wait_exponential(multiplier=self.retry_wait, max=MAX_RETRY_WAIT)
            + wait_random(0, self.retry_wait),
            retry=retry_if_exception_type(TransientDeliveryError),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        try:
            retrying(self._attempt, data, envelope_from, recipient)
        except TransientDeliveryError as exc:
            attempts = self.retries + 1
            raise TransientDeliveryError(
                f"{exc} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})"
            ) from exc

    # One attempt ------------------------------------------------------------------------

    def _attempt(self, data: bytes, envelope_from: str, recipient: str) -> None:
        """One delivery try; every smtplib/socket failure leaves as a DeliveryError."""
        try:
            reused = self._conn is not None and self._conn.sock is not None
            try:
                self._deliver(self._connection(), data, envelope_from, recipient)
            except smtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                # Servers close idle connections (a render between two sends can be slow):
                # reconnect once without spending a retry.
                log.info("%r: idle connection was closed, reconnecting", self)
                self._discard()
                self._deliver(self._connection(), data, envelope_from, recipient)
        except (smtplib.SMTPException, OSError) as exc:
            if not isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
                # The session is in an unknown state (timeout mid-command, reset): start over.
                self._discard()
            raise self._translate(exc, recipient) from exc

    def _deliver(self, conn: smtplib.SMTP, data: bytes, envelope_from: str, recipient: str) -> None:
        options: list[str] = []
        if not (envelope_from + recipient).isascii():
            if not conn.has_extn("smtputf8"):
                raise PermanentDeliveryError(
                    f"SMTP {self.host}:{self.port}: server lacks SMTPUTF8, "
                    f"cannot send to {recipient}"
                )
            options.append("SMTPUTF8")
        if not data.isascii() and conn.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        # smtplib sends RSET itself after a refused RCPT or DATA, so the session stays usable.
        conn.sendmail(envelope_from, [recipient], data, mail_options=options)

    def _connection(self) -> smtplib.SMTP:
        if self._conn is not None and self._conn.sock is not None:
            return self._conn
        self._discard()
        self._conn = self._open()
        return self._conn

    def _open(self) -> smtplib.SMTP:
        if self.security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=self._context(),
            )
        else:
            conn = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        try:
            conn.ehlo_or_helo_if_needed()
            if self.security == "starttls":
                conn.starttls(context=self._context())
                conn.ehlo()  # RFC 3207 §4.2: forget what was learned before TLS
            if self.username is not None:
                conn.login(self.username, self.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # Error translation ------------------------------------------------------------------

    def _translate(self, exc: smtplib.SMTPException | OSError, recipient: str) -> DeliveryError:
        where = f"SMTP {self.host}:{self.port}"
        if isinstance(exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException):
            return _reply_error(where, exc, recipient)
        return _connection_error(where, exc, self.timeout)


def _reply_error(
    where: str,
    exc: smtplib.SMTPRecipientsRefused | smtplib.SMTPResponseException,
    recipient: str,
) -> DeliveryError:
    """Translate a refusal that came with a reply code."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = exc.recipients.get(recipient) or next(iter(exc.recipients.values()))
        return _by_code(f"{where}: {code} {_text(text)} (RCPT TO)", code, permanent=True)
    stage = next((s for t, s in _STAGES.items() if isinstance(exc, t)), "reply")
    message = f"{where}: {exc.smtp_code} {_text(exc.smtp_error)} ({stage})"
    return _by_code(message, exc.smtp_code, permanent=isinstance(exc, smtplib.SMTPDataError))


def _connection_error(
    where: str, exc: smtplib.SMTPException | OSError, timeout: float
) -> DeliveryError:
    """Translate a failure without a reply code: the connection, TLS, or a missing feature."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientDeliveryError(f"{where}: connection lost ({exc})")
    if isinstance(exc, smtplib.SMTPException):
        return DeliveryError(f"{where}: {exc}")  # e.g. AUTH or STARTTLS not offered
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return TransientDeliveryError(f"{where}: TLS connection closed ({exc})")
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(f"{where}: TLS failed: {exc}")  # bad certificate, wrong port
    if isinstance(exc, TimeoutError):
        return TransientDeliveryError(f"{where}: timed out after {timeout:g}s")
    return TransientDeliveryError(f"{where}: {exc.strerror or exc}")  # refused, reset, DNS


def _by_code(message: str, code: int, *, permanent: bool) -> DeliveryError:
    """4xx is transient; 5xx is permanent for the recipient at RCPT/DATA, else config."""
    if 400 <= code < 500:
        return TransientDeliveryError(message)
    if code >= 500 and permanent:
        return PermanentDeliveryError(message, code=code)
    return DeliveryError(message)


def _text(reply: bytes | str) -> str:
    """A server reply on one line (multi-line replies joined)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())
