"""Delivery: building messages and handing them over.

A run hands prebuilt messages to a :class:`~digest.delivery.base.Sender` that
``make_sender(settings)`` picks: the SMTP connection pool (:mod:`.pool`) or the outbox in
durable batches (:mod:`.senders`). Single messages (the web app's confirmation mails) go
through a one-at-a-time :class:`~digest.delivery.base.Transport`::

    with make_transport(settings) as transport:
        transport.send(message, envelope_from=settings.envelope_from, recipient=address)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from digest.delivery.base import Sender, Transport
from digest.delivery.outbox import OutboxTransport, eml_name
from digest.delivery.pool import SmtpPool
from digest.delivery.senders import OUTBOX_BATCH, OutboxSender, TransportSender
from digest.delivery.smtp import SmtpTransport
from digest.delivery.wire import WIRE_POLICY, message_bytes
from digest.digests import ledger
from digest.store import db

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from digest.config.settings import Settings

__all__ = [
    "WIRE_POLICY",
    "OutboxTransport",
    "SmtpPool",
    "SmtpTransport",
    "Transport",
    "eml_name",
    "make_sender",
    "make_transport",
    "message_bytes",
]


def make_sender(
    settings: Settings, transport: Transport | None = None, *, engine: Engine | None = None
) -> Sender:
    """What a run hands its messages to: ``transport`` when given (tests, custom
    transports), else the outbox in durable batches or the SMTP connection pool. With an
    hourly rate limit, the pool starts from what the last hour's messages used of it (read
    from the store through ``engine``; every process counts the whole store's)."""
    if transport is not None:
        return TransportSender(transport)
    if settings.delivery == "smtp":
        sent_before: list[float] = []
        if settings.smtp_rate_per_hour and engine is not None:
            with db.transaction(engine) as session:
                sent_before = ledger.sent_ages(session)
        return SmtpPool.from_settings(settings, sent_before=sent_before)
    return OutboxSender(
        settings.resolved_outbox_dir, batch=min(OUTBOX_BATCH, settings.delivery_batch)
    )


def make_transport(settings: Settings) -> Transport:
    """The transport named by ``settings.delivery`` (``outbox`` or ``smtp``), not yet opened."""
    if settings.delivery == "smtp":
        return SmtpTransport.from_settings(settings)
    return OutboxTransport(settings.resolved_outbox_dir)
