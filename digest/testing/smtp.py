"""Test helpers shipped with the product: a real SMTP server on loopback.

``SmtpSink`` runs aiosmtpd in a thread and records what it receives; it can refuse, drop
connections and require TLS or AUTH on demand, so delivery code is tested against a real
server instead of a mocked smtplib::

    with SmtpSink() as sink:
        with SmtpTransport(host=sink.host, port=sink.port, retry_wait=0) as transport:
            transport.send(message, envelope_from="bounce@example.org", recipient="a@b.c")
        assert sink.messages[0].message["Subject"] == "…"

aiosmtpd is a development dependency, imported only when a sink starts.
"""

from __future__ import annotations

import asyncio
import email
import functools
import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Literal, Self

__all__ = ["ReceivedMessage", "SmtpSink"]

Stage = Literal["mail", "rcpt", "data"]
DropStage = Literal["connect", "mail"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One message as the server got it: envelope and the raw DATA bytes (CRLF)."""

    envelope_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        """The raw bytes parsed with ``policy.default``."""
        return email.message_from_bytes(self.raw, policy=policy.default)


@dataclass
class _Failure:
    reply: str
    remaining: int


@dataclass
class _State:
    """Shared by the test thread and the server thread; every access holds ``lock``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: list[ReceivedMessage] = field(default_factory=list)
    connections: int = 0
    auth_attempts: list[tuple[str, str, bool]] = field(default_factory=list)
    failures: dict[str, deque[_Failure]] = field(default_factory=dict)
    drops: deque[str] = field(default_factory=deque)
    data_delay: float = 0.0  # set once before the server starts

    def take_failure(self, stage: str) -> str | None:
        with self.lock:
            queue = self.failures.get(stage)
            if not queue:
                return None
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.popleft()
            return failure.reply

    def take_drop(self, stage: str) -> bool:
        with self.lock:
            if self.drops and self.drops[0] == stage:
                self.drops.popleft()
                return True
            return False


class _Handler:
    """aiosmtpd handler hooks: record messages, apply programmed failures."""

    def __init__(self, state: _State) -> None:
        self.state = state

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does when there is no hook
        # aiosmtpd advertises a bare "AUTH" even with every mechanism excluded; a server
        # without AUTH must not offer it at all (RFC 4954 §3 lists at least one mechanism).
        return [line for line in responses if line.rstrip() != "250-AUTH"]

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.state.take_drop("mail"):
            server.transport.abort()  # no reply at all: the client sees the socket close
            return "421 4.4.2 dropped by SmtpSink"
        reply = self.state.take_failure("mail")
        if reply is not None:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self.state.take_failure("rcpt")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        reply = self.state.take_failure("data")
        if reply is not None:
            return reply
        if self.state.data_delay:
            await asyncio.sleep(self.state.data_delay)  # a relay that takes its time
        received = ReceivedMessage(
            envelope_from=envelope.mail_from,
            rcpt_tos=tuple(envelope.rcpt_tos),
            raw=bytes(envelope.original_content),
        )
        with self.state.lock:
            self.state.messages.append(received)
        return "250 2.0.0 OK queued by SmtpSink"


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback, for tests. Use as a context manager.

    ``tls_context`` offers STARTTLS (``require_starttls`` refuses mail without it);
    ``ssl_context`` makes the port implicit TLS. ``auth_users`` enables AUTH PLAIN and
    LOGIN (``auth_mechanisms`` narrows them), allowed without TLS on loopback.
    ``idle_timeout`` is how long the server keeps a silent connection open;
    ``data_delay`` how long it takes to accept each message.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        auth_users: Mapping[str, str] | None = None,
        auth_mechanisms: Iterable[str] = ("PLAIN", "LOGIN"),
        idle_timeout: float = 300.0,
        data_delay: float = 0.0,
    ) -> None:
        self.host = host
        self.port = 0
        self._state = _State()
        self._state.data_delay = data_delay
        self._live: set[Any] = set()  # open server connections; touched only on the server loop
        self._users = dict(auth_users or {})
        self._smtp_kwargs: dict[str, Any] = {
            "tls_context": tls_context,
            "require_starttls": require_starttls,
            "timeout": idle_timeout,
            # Loopback only: credentials never cross a real network.
            "auth_require_tls": False,
            # Without users, offer no AUTH at all, like a plain relay.
            "auth_exclude_mechanism": {"PLAIN", "LOGIN"}
            - (set(auth_mechanisms) if auth_users is not None else set()),
        }
        if auth_users is not None:
            self._smtp_kwargs["authenticator"] = self._authenticate
        self._ssl_context = ssl_context
        self._controller: Any = None

    # Lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server thread on a free port (``self.port``)."""
        if self._controller is not None:
            raise RuntimeError("SmtpSink already started")
        controller_cls = _controller_class()
        for attempt in range(3):
            port = _free_port(self.host)
            controller = controller_cls(
                _Handler(self._state),
                sink=self,
                hostname=self.host,
                port=port,
                ssl_context=self._ssl_context,
                server_hostname="smtpsink.localhost",  # skips a getfqdn() DNS lookup
                ready_timeout=5.0,
                **self._smtp_kwargs,
            )
            try:
                controller.start()
            except OSError:
                _dispose(controller)
                if attempt == 2:
                    raise
                continue  # another process took the port between probe and bind
            except BaseException:
                _dispose(controller)
                raise
            self._controller, self.port = controller, port
            break
        with self._state.lock:
            self._state.connections = 0  # the controller's own start-up probe is not a client

    def stop(self) -> None:
        """Close client connections, stop the server and join its thread."""
        controller, self._controller = self._controller, None
        if controller is None:
            return
        try:
            self._run_on_loop(controller, self._abort_all())
        finally:
            _dispose(controller)

    # What the server saw ----------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Messages accepted so far, oldest first (a copy)."""
        with self._state.lock:
            return list(self._state.messages)

    @property
    def connections(self) -> int:
        """Client connections accepted so far (proves connection reuse)."""
        with self._state.lock:
            return self._state.connections

    @property
    def auth_attempts(self) -> list[tuple[str, str, bool]]:
        """``(mechanism, login, succeeded)`` for every AUTH attempt."""
        with self._state.lock:
            return list(self._state.auth_attempts)

    # Programmed misbehaviour ------------------------------------------------------------

    def fail_next(
        self, code: int = 451, *, times: int = 1, stage: Stage = "rcpt", text: str | None = None
    ) -> None:
        """Refuse the next ``times`` commands at ``stage`` with ``code``."""
        if not 400 <= code < 600:
            raise ValueError("code must be a 4xx or 5xx SMTP reply code")
        default = "4.3.0 Try again later" if code < 500 else "5.1.1 Rejected"
        reply = f"{code} {text or default} (SmtpSink)"
        with self._state.lock:
            self._state.failures.setdefault(stage, deque()).append(_Failure(reply, times))

    def drop_next_connection(self, *, stage: DropStage = "connect") -> None:
        """Close the next connection without a reply: before the greeting, or at MAIL."""
        with self._state.lock:
            self._state.drops.append(stage)

    def drop_connections(self) -> None:
        """Close every open client connection now, as a server's idle timeout would."""
        if self._controller is None:
            raise RuntimeError("SmtpSink is not running")
        self._run_on_loop(self._controller, self._abort_all())

    # Internals --------------------------------------------------------------------------

    def _connected(self, server: Any, transport: asyncio.BaseTransport) -> None:
        self._live.add(server)
        with self._state.lock:
            self._state.connections += 1
        if self._state.take_drop("connect") and isinstance(transport, asyncio.WriteTransport):
            transport.abort()

    def _disconnected(self, server: Any) -> None:
        self._live.discard(server)

    async def _abort_all(self) -> None:
        for server in list(self._live):
            if server.transport is not None:
                # abort, not close: a TLS close waits for the peer's close_notify.
                server.transport.abort()
        async with asyncio.timeout(5):
            while self._live:
                await asyncio.sleep(0.005)

    @staticmethod
    def _run_on_loop(controller: Any, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, controller.loop).result(timeout=10)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: PLC0415 - dev dependency

        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        ok = self._users.get(login) == auth_data.password.decode("utf-8", "replace")
        with self._state.lock:
            self._state.auth_attempts.append((mechanism, login, ok))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _dispose(controller: Any) -> None:
    """Stop the controller's thread and make sure its event loop is closed."""
    controller.stop(no_assert=True)
    if not controller.loop.is_closed():  # start() failed before the loop ran
        controller.loop.close()


@functools.cache
def _controller_class() -> Any:
    """aiosmtpd classes that report connections to the sink (built on first use)."""
    from aiosmtpd.controller import Controller  # noqa: PLC0415 - dev dependency
    from aiosmtpd.smtp import SMTP  # noqa: PLC0415 - dev dependency

    class SinkSMTP(SMTP):
        def __init__(self, *args: Any, sink: SmtpSink, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._sink = sink

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            first = self.transport is None  # STARTTLS calls this again on the same session
            super().connection_made(transport)
            if first:
                self._sink._connected(self, transport)

        def connection_lost(self, error: Exception | None) -> None:
            super().connection_lost(error)
            self._sink._disconnected(self)

    class SinkController(Controller):
        def __init__(self, *args: Any, sink: SmtpSink, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._sink = sink

        def factory(self) -> Any:
            # Passing the loop keeps aiosmtpd from probing for one under
            # warnings.catch_warnings(), which is not thread-safe.
            return SinkSMTP(self.handler, sink=self._sink, loop=self.loop, **self.SMTP_kwargs)

    return SinkController
