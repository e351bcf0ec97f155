"""What a batch transport is handed (:class:`Outgoing`) and what it answers (:class:`Outcome`).

A batch transport (:class:`~digest.delivery.pool.SmtpPool`) takes prebuilt messages one at a
time and reports one :class:`Outcome` per message as soon as the server has answered it, so
the caller can record each digest's state while the rest are still on the wire::

    with SmtpPool.from_settings(settings) as pool:
        for outcome in pool.send_all(messages):   # messages: any iterable, consumed lazily
            record(outcome)

Every message handed over gets exactly one outcome:

``sent``
    The server accepted it: 250 after the end of DATA. It is never sent again by a retry.
``transient``
    Attempted and not accepted (4xx, dropped connection, no answer in time) after the
    retries: try again later, counting this attempt.
``permanent``
    This message or recipient was refused for good: 5xx at MAIL FROM (e.g. 552 size), RCPT
    TO or DATA, or larger than the relay's advertised ``SIZE`` (then not attempted at all;
    ``stage`` is ``"SIZE"``). :attr:`Outcome.hard_bounce` says whether it counts against
    the address (5xx at RCPT TO or DATA).
``deferred``
    No final answer and not the message's fault: the relay is down (circuit open), the
    configuration is wrong, the rate limit's window is full, or the run is stopping. Send it
    in the next run without counting an attempt.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, Self

Status = Literal["sent", "transient", "permanent", "deferred"]
Stage = Literal["connect", "MAIL FROM", "RCPT TO", "DATA", "SIZE"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One prebuilt message for one recipient."""

    key: int
    """The caller's id for it (a digest id), handed back in its :class:`Outcome`."""
    data: bytes
    """The exact wire bytes (CRLF line ends), already DKIM-signed when signing is on."""
    envelope_from: str
    recipient: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one :class:`Outgoing` (see the module doc for each status)."""

    key: int
    status: Status
    code: int | None = None
    """The server's reply code that decided it (250 when sent), None without one."""
    error: str | None = None
    """One line for the log and the digest row; None when sent."""
    stage: Stage | None = None
    """Where a refusal happened; None when sent or deferred."""

    @property
    def hard_bounce(self) -> bool:
        """A permanent refusal of the recipient or the content (5xx at RCPT TO or DATA)."""
        return self.status == "permanent" and self.stage in ("RCPT TO", "DATA")


class BatchTransport(Protocol):
    """Sends :class:`Outgoing` messages, streaming one :class:`Outcome` per message."""

    name: str

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def submit(self, message: Outgoing) -> None:
        """Queue one message; may block while the queue is full."""
        ...

    def finish(self) -> None:
        """No more messages will be submitted; :meth:`outcomes` ends once all are answered."""
        ...

    def outcomes(self) -> Iterator[Outcome]:
        """Outcomes in the order the server answered, until :meth:`finish`'s messages are done."""
        ...

    def send_all(self, messages: Iterable[Outgoing]) -> Generator[Outcome, None, None]:
        """Submit ``messages`` (consumed lazily, in a thread) and yield their outcomes."""
        ...
