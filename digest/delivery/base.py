"""Delivery plug-point: the ``Transport`` protocol, and :class:`BaseTransport`.

A transport is opened once per run (one SMTP connection reused for every message), sends
``EmailMessage`` objects (``send``) or prebuilt wire bytes (``send_bytes``, e.g. from
:func:`~digest.delivery.fastmime.wire_message`) and is closed. Both raise
:class:`~digest.errors.TransientDeliveryError` (retry later) or
:class:`~digest.errors.PermanentDeliveryError` (flag the address).

:class:`BaseTransport` carries the context-manager boilerplate (httpx's ``BaseTransport`` is
the model): ``with`` calls :meth:`~BaseTransport.open` on entry and
:meth:`~BaseTransport.close` once on exit; a transport overrides what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from types import TracebackType
from typing import Literal, Protocol, Self


class Transport(Protocol):
    """Sends email messages. Use as a context manager: ``with transport: transport.send(m)``."""

    name: str

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def send(self, message: EmailMessage, *, envelope_from: str, recipient: str) -> None:
        """Deliver one message to one recipient; raise a DeliveryError subclass on failure."""
        ...

    def send_bytes(
        self, data: bytes, *, envelope_from: str, recipient: str, message_id: str
    ) -> None:
        """Deliver ``data`` (a whole message, CRLF line ends) like ``send``; ``message_id``
        is its Message-ID header's value (the outbox names the file after it)."""
        ...


class BaseTransport:
    """``with transport:`` opens it and closes it once, however the block ends."""

    name = "base"

    def open(self) -> None:
        """Prepare to send (create a directory, nothing for a lazy connection)."""

    def close(self) -> None:
        """Release what sending held (a connection); called once by ``__exit__``."""

    def send(self, message: EmailMessage, *, envelope_from: str, recipient: str) -> None:
        raise NotImplementedError

    def send_bytes(
        self, data: bytes, *, envelope_from: str, recipient: str, message_id: str
    ) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# Senders: what a run hands prebuilt messages to --------------------------------------------


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message, built and serialized, on its way to one recipient."""

    key: int  # the digest id: the sender gives it back with the outcome
    data: bytes  # the exact wire bytes (CRLF), DKIM-signed when configured
    envelope_from: str
    recipient: str
    message_id: str
    # Or those bytes already written by a renderer process to a file in the outbox sender's
    # spool (``OutboxSender.spool``; ``data`` is then empty): only that sender takes these.
    path: str | None = None


OutcomeStatus = Literal["sent", "transient", "permanent", "deferred"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the hand-over of one message ended.

    sent: accepted (250 after DATA, or durable in the outbox); transient: 4xx or dropped,
    retry later; permanent: refused for good (5xx); deferred: never attempted (the relay is
    down, the outbox cannot be written, the run stops): the digest is retried next run.
    ``bounce``: the refusal was about the address (a hard bounce), not the message.
    """

    key: int
    status: OutcomeStatus
    error: str | None = None
    code: int | None = None
    bounce: bool = False


class Sender(Protocol):
    """Takes prebuilt messages and reports, as soon as it knows, how each one ended.

    ``submit`` may block (back-pressure); ``collect`` returns the outcomes known now, or,
    with ``wait``, every outstanding one. A context manager: ``close`` (on exit) finishes or
    defers what was submitted.
    """

    name: str

    def submit(self, message: Outgoing) -> None: ...

    def collect(self, *, wait: bool = False) -> list[Outcome]: ...

    def stop(self, reason: str) -> None:
        """Hand over nothing more: what is queued and not yet attempted becomes deferred."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
