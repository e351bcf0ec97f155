"""Delivery plug-point: the ``Transport`` protocol.

A transport is opened once per run (one SMTP connection reused for every message), sends
``EmailMessage`` objects and is closed. ``send`` raises
:class:`~digest.errors.TransientDeliveryError` (retry later) or
:class:`~digest.errors.PermanentDeliveryError` (flag the address).
"""

from __future__ import annotations

from email.message import EmailMessage
from types import TracebackType
from typing import Protocol, Self


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
