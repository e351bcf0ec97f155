"""A real SMTP server that misbehaves the way relays do, for the pool's tests.

:class:`FaultySink` is :class:`~digest.testing.smtp.SmtpSink` (aiosmtpd on loopback) with
the faults a bulk sender meets::

    with FaultySink(max_connections=2, size_limit=50_000, mail_refusal_percent=5) as sink:
        sink.refuse_recipient("gone@example.org")            # 550 5.1.1 at RCPT TO
        sink.refuse_recipient("busy@example.org", "450 4.2.1 Mailbox busy", times=2)
        sink.drop_during_data()                              # no reply after the data
        sink.fail_next(421, stage="mail", text="4.7.0 Slow down")   # from SmtpSink
        ...
        sink.messages, sink.peak_connections, sink.accepted_at, sink.refusals

- ``max_connections``: a client beyond that many open connections is greeted with
  ``421 4.7.0 Too many connections`` and disconnected, as Postfix's connection count limit.
- ``size_limit``: advertised as EHLO ``SIZE``; aiosmtpd refuses a larger ``SIZE=`` at
  MAIL FROM (552) and larger data at DATA (552).
- ``mail_refusal_percent``: that share of MAIL FROM commands, spread evenly (the 20th,
  40th, … for 5), is answered ``mail_refusal`` (552 by default).
- ``data_drop_percent``: that share of transactions, spread the same way, has its
  connection closed after the data arrived, before the reply (the message is not kept).
- ``smtputf8=False``: no SMTPUTF8 (RFC 6531) offered, as many relays still do.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from digest.testing.smtp import SmtpSink, _Handler, _State

__all__ = ["FaultySink", "Refusal"]


@dataclass(frozen=True)
class Refusal:
    """A refusal the sink sent: ``stage`` is ``mail``, ``rcpt``, ``data`` or ``connect``."""

    stage: str
    reply: str
    address: str | None = None


@dataclass
class _Faults:
    """Programmed faults and what they did; every access holds the sink state's lock."""

    max_connections: int | None = None
    mail_refusal_percent: float = 0.0
    mail_refusal: str = "552 5.3.4 Message size exceeds fixed limit (SmtpSink)"
    mail_commands: int = 0
    data_drop_percent: float = 0.0
    data_commands: int = 0
    recipients: dict[str, deque[str] | str] = field(default_factory=dict)
    data_drops: int = 0
    accepted_at: list[float] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    peak_connections: int = 0


def _nth_of(n: int, percent: float) -> bool:
    """Whether the n-th event (from 1) is one of ``percent`` %, spread evenly."""
    return int(n * percent // 100) > int((n - 1) * percent // 100)


class _FaultHandler(_Handler):
    def __init__(self, state: _State, faults: _Faults) -> None:
        super().__init__(state)
        self.faults = faults

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        faults = self.faults
        with self.state.lock:
            faults.mail_commands += 1
            refuse = _nth_of(faults.mail_commands, faults.mail_refusal_percent)
            if refuse:
                faults.refusals.append(Refusal("mail", faults.mail_refusal, address))
        if refuse:
            return faults.mail_refusal
        return await super().handle_MAIL(server, session, envelope, address, options)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.state.lock:
            programmed = self.faults.recipients.get(address)
            reply: str | None = None
            if isinstance(programmed, str):
                reply = programmed
            elif programmed:
                reply = programmed.popleft()
            if reply is not None:
                self.faults.refusals.append(Refusal("rcpt", reply, address))
        if reply is not None:
            return reply
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        faults = self.faults
        with self.state.lock:
            faults.data_commands += 1
            drop = faults.data_drops > 0 or _nth_of(faults.data_commands, faults.data_drop_percent)
            if drop:
                faults.data_drops = max(0, faults.data_drops - 1)
                faults.refusals.append(Refusal("data", "(dropped)", None))
        if drop:
            # The data has arrived; the client never hears whether it was accepted.
            server.transport.abort()
            return "451 4.3.0 dropped by FaultySink"
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            with self.state.lock:
                self.faults.accepted_at.append(time.monotonic())
        return reply


class FaultySink(SmtpSink):
    """:class:`SmtpSink` with relay faults (see the module doc)."""

    def __init__(
        self,
        *,
        max_connections: int | None = None,
        size_limit: int | None = None,
        mail_refusal_percent: float = 0.0,
        mail_refusal: str | None = None,
        data_drop_percent: float = 0.0,
        smtputf8: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._smtp_kwargs["enable_SMTPUTF8"] = smtputf8
        self._faults = _Faults(max_connections, mail_refusal_percent)
        self._faults.data_drop_percent = data_drop_percent
        if mail_refusal is not None:
            self._faults.mail_refusal = mail_refusal
        # aiosmtpd's default is 32 MiB; 0 advertises no SIZE at all.
        self._smtp_kwargs["data_size_limit"] = size_limit or 0

    def refuse_recipient(
        self, address: str, reply: str = "550 5.1.1 No such user (SmtpSink)", *, times: int = 0
    ) -> None:
        """Answer ``reply`` at RCPT TO for ``address``: ``times`` times, or always (0)."""
        with self._state.lock:
            self._faults.recipients[address] = deque([reply] * times) if times else reply

    def set_max_connections(self, limit: int | None) -> None:
        """Change the connection limit (None: no limit), as a relay's load changes."""
        with self._state.lock:
            self._faults.max_connections = limit

    def drop_during_data(self, times: int = 1) -> None:
        """Close the next ``times`` connections after their data arrived, before the reply."""
        with self._state.lock:
            self._faults.data_drops += times

    @property
    def accepted_at(self) -> list[float]:
        """``time.monotonic()`` of each accepted message, in order."""
        with self._state.lock:
            return list(self._faults.accepted_at)

    @property
    def refusals(self) -> list[Refusal]:
        """Every programmed refusal sent, in order."""
        with self._state.lock:
            return list(self._faults.refusals)

    @property
    def peak_connections(self) -> int:
        """Most client connections open at once (over the limit ones included)."""
        with self._state.lock:
            return self._faults.peak_connections

    def _handler(self) -> Any:
        return _FaultHandler(self._state, self._faults)

    def _connected(self, server: Any, transport: Any) -> None:
        super()._connected(server, transport)
        with self._state.lock:
            limit = self._faults.max_connections
            self._faults.peak_connections = max(self._faults.peak_connections, len(self._live))
            over = limit is not None and len(self._live) > limit
            if over:
                reply = "421 4.7.0 Too many connections (SmtpSink)"
                self._faults.refusals.append(Refusal("connect", reply))
        if over and not transport.is_closing():
            transport.write(reply.encode() + b"\r\n")
            transport.close()  # flushes the 421; aiosmtpd's own greeting is then dropped
