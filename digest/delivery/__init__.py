"""Delivery: transports that send rendered messages (SMTP) or file them (outbox).

``make_transport(settings)`` picks the configured one; both satisfy
:class:`~digest.delivery.base.Transport` and are used as context managers::

    with make_transport(settings) as transport:
        transport.send(message, envelope_from=settings.envelope_from, recipient=address)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.delivery.base import Transport
from digest.delivery.outbox import OutboxTransport, eml_name
from digest.delivery.outgoing import BatchTransport, Outcome, Outgoing
from digest.delivery.pool import SmtpPool
from digest.delivery.smtp import SmtpTransport
from digest.delivery.wire import WIRE_POLICY, message_bytes

if TYPE_CHECKING:
    from digest.config.settings import Settings

__all__ = [
    "WIRE_POLICY",
    "BatchTransport",
    "OutboxTransport",
    "Outcome",
    "Outgoing",
    "SmtpPool",
    "SmtpTransport",
    "Transport",
    "eml_name",
    "make_transport",
    "message_bytes",
]


def make_transport(settings: Settings) -> Transport:
    """The transport named by ``settings.delivery`` (``outbox`` or ``smtp``), not yet opened."""
    if settings.delivery == "smtp":
        return SmtpTransport.from_settings(settings)
    return OutboxTransport(settings.resolved_outbox_dir)
