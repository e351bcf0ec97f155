"""Delivery: transports that send rendered messages (SMTP) or file them (outbox).

``make_transport(settings)`` picks the configured one; both satisfy
:class:`~digest.delivery.base.Transport` and are used as context managers::

    with make_transport(settings) as transport:
        transport.send(message, envelope_from=settings.envelope_from, recipient=address)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.delivery.base import Sender, Transport
from digest.delivery.outbox import OutboxTransport, eml_name
from digest.delivery.senders import OUTBOX_BATCH, OutboxSender, TransportSender
from digest.delivery.smtp import SmtpTransport
from digest.delivery.wire import WIRE_POLICY, message_bytes

if TYPE_CHECKING:
    from digest.config.settings import Settings

__all__ = [
    "WIRE_POLICY",
    "OutboxTransport",
    "SmtpTransport",
    "Transport",
    "eml_name",
    "make_sender",
    "make_transport",
    "message_bytes",
]


def make_sender(settings: Settings, transport: Transport | None = None) -> Sender:
    """What a run hands its messages to: ``transport`` when given (tests, the scheduler's
    fenced transport), else the outbox in durable batches or the SMTP transport."""
    if transport is not None:
        return TransportSender(transport)
    if settings.delivery == "smtp":
        return TransportSender(SmtpTransport.from_settings(settings))
    return OutboxSender(
        settings.resolved_outbox_dir, batch=min(OUTBOX_BATCH, settings.delivery_batch)
    )


def make_transport(settings: Settings) -> Transport:
    """The transport named by ``settings.delivery`` (``outbox`` or ``smtp``), not yet opened."""
    if settings.delivery == "smtp":
        return SmtpTransport.from_settings(settings)
    return OutboxTransport(settings.resolved_outbox_dir)
