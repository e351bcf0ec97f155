"""One SMTP connection of the pool: set up once (EHLO, STARTTLS, AUTH), then one
transaction per message, each under a wall-clock deadline (:mod:`.deadline`).

Every failure leaves as a :class:`~digest.delivery.replies.SessionError` whose ``kind``
(:mod:`.replies`) tells the pool what to do with the message and the connection.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Literal

from digest.delivery.base import Outgoing
from digest.delivery.deadline import Guard
from digest.delivery.replies import SessionError, Stage, lost, refusal, setup_error, setup_refusal

__all__ = ["Endpoint", "Security", "SmtpSession"]

Security = Literal["none", "starttls", "ssl"]
QUIT_WAIT = 2.0  # seconds a polite QUIT may take before the socket is just closed


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect; shared by every connection of a pool."""

    host: str
    port: int
    security: Security = "none"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    """Seconds any single socket operation may block."""
    deadline: float = 60.0
    """Seconds a whole transaction (or the session set-up) may take, however it trickles."""
    local_hostname: str | None = None
    """EHLO name; None: an address literal of the local end."""
    ssl_context: ssl.SSLContext | None = None

    @property
    def where(self) -> str:
        return f"SMTP {self.host}:{self.port}"


class _Client(smtplib.SMTP):
    """smtplib with the socket visible to the watchdog from the moment it exists."""

    def __init__(self, *, timeout: float, implicit_tls: ssl.SSLContext | None) -> None:
        self._implicit_tls = implicit_tls
        # A name is given so that smtplib does not call getfqdn() (DNS) per connection.
        super().__init__(local_hostname="localhost", timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((host, port), timeout, self.source_address)
        self.sock = sock  # the watchdog can shut it down from here on
        if self._implicit_tls is None:
            return sock
        return self.handshake(self._implicit_tls, host)

    def handshake(self, context: ssl.SSLContext, host: str) -> ssl.SSLSocket:
        """TLS over the current socket, the handshake itself under the watchdog too."""
        assert self.sock is not None
        tls = context.wrap_socket(self.sock, server_hostname=host, do_handshake_on_connect=False)
        self.sock = tls
        tls.do_handshake()
        return tls


class SmtpSession:
    """One reusable connection. Not thread-safe: one worker thread owns it."""

    def __init__(self, endpoint: Endpoint, guard: Guard) -> None:
        self.endpoint = endpoint
        self._guard = guard
        self._conn: _Client | None = None
        self.reused = False  # a message has gone over this connection
        self._done_at = 0.0  # when the last transaction ended (monotonic)
        self.max_size: int | None = None  # EHLO SIZE, when the relay states a limit

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.sock is not None

    # Set-up -----------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, greet, STARTTLS and AUTH as configured; raise SessionError otherwise."""
        self.discard()
        ep = self.endpoint
        implicit = self._context() if ep.security == "ssl" else None
        conn = _Client(timeout=ep.timeout, implicit_tls=implicit)
        self._guard.arm(conn, time.monotonic() + ep.deadline)
        try:
            code, reply = conn.connect(ep.host, ep.port)
            if code != 220:
                raise setup_refusal(self.endpoint.where, code, reply, "greeting")
            conn.local_hostname = ep.local_hostname or _address_literal(conn)
            self._ehlo(conn)
            if ep.security == "starttls":
                self._starttls(conn)
            if ep.username is not None:
                self._login(conn)
        except SessionError:
            self._close(conn)
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self._close(conn)
            raise self._setup_error(exc) from exc
        finally:
            expired = self._guard.disarm()
        if expired:  # the last reply came in just as the deadline passed
            self._close(conn)
            raise self._setup_error(TimeoutError())
        self._conn, self.reused = conn, False
        size = conn.esmtp_features.get("size", "")
        self.max_size = int(size) if size.isdigit() and int(size) > 0 else None

    def _ehlo(self, conn: _Client) -> None:
        code, reply = conn.ehlo()
        if not 200 <= code < 300:
            if code == 421:
                raise setup_refusal(self.endpoint.where, code, reply, "EHLO")
            code, reply = conn.helo()
            if not 200 <= code < 300:
                raise setup_refusal(self.endpoint.where, code, reply, "HELO")

    def _starttls(self, conn: _Client) -> None:
        if not conn.has_extn("starttls"):
            raise SessionError("config", f"{self.endpoint.where}: server does not offer STARTTLS")
        code, reply = conn.docmd("STARTTLS")
        if code != 220:
            raise setup_refusal(self.endpoint.where, code, reply, "STARTTLS")
        conn.handshake(self._context(), self.endpoint.host)
        # RFC 3207 §4.2: forget what the server said before TLS, then ask again.
        conn.file = None
        conn.helo_resp = conn.ehlo_resp = None
        conn.esmtp_features, conn.does_esmtp = {}, False
        self._ehlo(conn)

    def _login(self, conn: _Client) -> None:
        try:
            conn.login(self.endpoint.username or "", self.endpoint.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise setup_refusal(self.endpoint.where, exc.smtp_code, exc.smtp_error, "AUTH") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise SessionError("config", f"{self.endpoint.where}: {exc}") from exc

    # One transaction --------------------------------------------------------------------

    def refuse_locally(self, message: Outgoing) -> SessionError | None:
        """A permanent refusal this relay is known to give, so the message is not offered:
        larger than its EHLO ``SIZE``, or a non-ASCII address without SMTPUTF8."""
        conn = self._conn
        assert conn is not None, "open() first"
        where, size = self.endpoint.where, len(message.data)
        if self.max_size is not None and size > self.max_size:
            return SessionError(
                "permanent",
                f"{where}: message is {size:,} bytes, over the relay's limit of "
                f"{self.max_size:,} (EHLO SIZE); not attempted",
                stage="SIZE",
            )
        if not (message.envelope_from + message.recipient).isascii() and not conn.has_extn(
            "smtputf8"
        ):
            return SessionError(
                "permanent",
                f"{where}: server lacks SMTPUTF8, cannot send to {message.recipient}",
                stage="MAIL FROM",
            )
        return None

    def send(self, message: Outgoing) -> int:
        """MAIL FROM, RCPT TO, DATA for one message; return the final 250's code.

        Call :meth:`refuse_locally` first: this offers the message whatever it is."""
        conn = self._conn
        assert conn is not None, "open() first"
        options = self._mail_options(conn, message, len(message.data))
        stage: Stage = "MAIL FROM"
        self._guard.arm(conn, time.monotonic() + self.endpoint.deadline)
        try:
            code, reply = conn.mail(message.envelope_from, options)
            if code != 250:
                idle = time.monotonic() - self._done_at if self.reused else 0.0
                raise refusal(self.endpoint.where, code, reply, stage, idle=idle)
            stage = "RCPT TO"
            code, reply = conn.rcpt(message.recipient)
            if code not in (250, 251):
                raise refusal(self.endpoint.where, code, reply, stage)
            stage = "DATA"
            code, reply = conn.data(message.data)
            if code != 250:
                raise refusal(self.endpoint.where, code, reply, stage)
        except SessionError as failure:
            self._after_refusal(conn, failure)
            raise
        except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
            refused = refusal(self.endpoint.where, exc.smtp_code, exc.smtp_error, stage)
            self._after_refusal(conn, refused)
            raise refused from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.discard()
            raise lost(
                self.endpoint.where,
                exc,
                stage,
                expired=self._guard.expired,
                deadline=self.endpoint.deadline,
                timeout=self.endpoint.timeout,
                reused=self.reused,
            ) from exc
        finally:
            expired = self._guard.disarm()
        if expired:
            # The 250 arrived as the deadline passed: the message is sent, the socket is not
            # usable any more (the watchdog shut it down).
            self.discard()
        self.reused, self._done_at = True, time.monotonic()
        return code

    def _mail_options(self, conn: _Client, message: Outgoing, size: int) -> list[str]:
        options: list[str] = []
        if conn.does_esmtp and conn.has_extn("size"):
            options.append(f"SIZE={size}")  # RFC 1870: the relay may refuse it at once
        if not (message.envelope_from + message.recipient).isascii():
            options.append("SMTPUTF8")  # refuse_locally() made sure the server has it
        if not message.data.isascii() and conn.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        return options

    def _after_refusal(self, conn: _Client, failure: SessionError) -> None:
        """RSET so the connection serves the next message; 421 means it is closing."""
        if failure.code == 421 or failure.kind == "config":
            self.discard()
            return
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self.discard()

    # Tear-down --------------------------------------------------------------------------

    def close(self) -> None:
        """QUIT politely (briefly) and close; errors on the way out are ignored."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if conn.sock is not None:
            self._guard.arm(conn, time.monotonic() + min(QUIT_WAIT, self.endpoint.deadline))
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass  # the server may already be gone; nothing left to deliver
            finally:
                self._guard.disarm()
        self._close(conn)

    def discard(self) -> None:
        """Close without QUIT (the session is in an unknown state)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._close(conn)

    @staticmethod
    def _close(conn: _Client) -> None:
        with contextlib.suppress(OSError):  # a socket the watchdog shut down
            conn.close()

    def _setup_error(self, exc: BaseException) -> SessionError:
        ep = self.endpoint
        return setup_error(
            ep.where, exc, expired=self._guard.expired, deadline=ep.deadline, timeout=ep.timeout
        )

    def _context(self) -> ssl.SSLContext:
        return self.endpoint.ssl_context or _default_context()


_DEFAULT_CONTEXT: list[ssl.SSLContext] = []


def _default_context() -> ssl.SSLContext:
    if not _DEFAULT_CONTEXT:
        _DEFAULT_CONTEXT.append(ssl.create_default_context())
    return _DEFAULT_CONTEXT[0]


def _address_literal(conn: smtplib.SMTP) -> str:
    """RFC 5321 §4.1.3: an address literal of our end when there is no host name."""
    assert conn.sock is not None
    address = conn.sock.getsockname()[0]
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"
