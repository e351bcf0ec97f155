"""What the scheduler has to do at ``now``: missed periods, waiting work, next send times.

Functions of the store and ``now`` only (no APScheduler, no commits), shared by the deliver
job and ``digest status``.

Catching up after downtime: ``find_due`` covers the *current* period of each subscriber.
When the scheduler was down through a send time and comes back before the next period's
send time, the missed period would be skipped. :func:`find_missed` returns those, once: a
period is missed when its send time has passed, the subscriber was confirmed by then, and no digest
was made since (no digest for it and the last digest's window ended before its send time).
Its one digest covers everything since the previous digest, however long the outage.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from digest.db import chunks
from digest.models import Digest, Subscriber
from digest.pipeline import Due, find_due
from digest.runner import STALE_SENDING
from digest.schedule import Frequency, Period, is_due, period_for
from digest.settings import Settings


def _period_at_day(subscriber: Subscriber, day_offset: int, period: Period) -> Period:
    """The subscriber's period containing local noon ``day_offset`` days from ``period``."""
    zone = ZoneInfo(subscriber.timezone)
    # local noon is never in a DST gap or overlap, so it lands unambiguously in that day
    noon = datetime.combine(period.start + timedelta(days=day_offset), time(12), tzinfo=zone)
    other = period_for(
        cast(Frequency, subscriber.frequency),
        now=noon,
        weekday=subscriber.weekday,
        hour=subscriber.hour,
        timezone=subscriber.timezone,
    )
    assert other is not None  # frequency is not "off" when a period exists
    return other


def previous_period(subscriber: Subscriber, period: Period) -> Period:
    """The period before ``period`` (the day or ISO week before)."""
    return _period_at_day(subscriber, -1, period)


def following_period(subscriber: Subscriber, period: Period) -> Period:
    """The period after ``period``."""
    return _period_at_day(subscriber, 1 if subscriber.frequency == "daily" else 7, period)


@dataclass(frozen=True, slots=True)
class Slot:
    """One scheduled subscriber's periods at ``now``."""

    subscriber: Subscriber
    current: Period
    previous: Period


def _scheduled(session: Session, *, now: datetime, settings: Settings) -> Iterator[Slot]:
    statement = select(Subscriber).where(
        col(Subscriber.status) == "active",
        col(Subscriber.frequency) != "off",
        col(Subscriber.bounce_count) < settings.bounce_limit,
    )
    for subscriber in session.execute(statement.order_by(col(Subscriber.id))).scalars():
        current = period_for(
            cast(Frequency, subscriber.frequency),
            now=now,
            weekday=subscriber.weekday,
            hour=subscriber.hour,
            timezone=subscriber.timezone,
        )
        if current is not None:
            yield Slot(subscriber, current, previous_period(subscriber, current))


@dataclass(slots=True)
class Outlook:
    """Every scheduled subscriber's current and previous period at ``now``, and what the
    store says about them: read with three queries, whatever the number of subscribers."""

    now: datetime
    slots: list[Slot]
    keys: set[tuple[int, str]]  # (subscriber, period key) of existing digests among those
    last_end: dict[int, datetime]  # each subscriber's last digest window end

    def has_digest(self, slot: Slot, period: Period) -> bool:
        return (slot.subscriber.id or 0, period.key) in self.keys

    def due(self, slot: Slot) -> bool:
        """The current period's send time has passed and it has no digest yet."""
        return is_due(slot.current, self.now) and not self.has_digest(slot, slot.current)

    def missed(self, slot: Slot) -> bool:
        """The previous period was missed (see the module docstring) and the current one is
        not due yet (if it is, its digest covers the gap)."""
        subscriber, previous = slot.subscriber, slot.previous
        if is_due(slot.current, self.now) or self.has_digest(slot, previous):
            return False
        end = self.last_end.get(subscriber.id or 0)
        since = subscriber.confirmed_at or subscriber.created_at  # when digests could start
        return since <= previous.send_at and (end is None or end < previous.send_at)


def survey(session: Session, *, now: datetime, settings: Settings) -> Outlook:
    """Read the :class:`Outlook` at ``now``."""
    slots = list(_scheduled(session, now=now, settings=settings))
    ids = [slot.subscriber.id for slot in slots]
    if not ids:
        return Outlook(now, [], set(), {})
    # A handful of distinct keys ("weekly:2026-W48", "daily:2026-11-23"): one list is enough.
    period_keys = {slot.current.key for slot in slots} | {slot.previous.key for slot in slots}
    keys: set[tuple[int, str]] = set()
    last_end: dict[int, datetime] = {}
    for chunk in chunks(ids):
        keys.update(
            (int(s), str(k))
            for s, k in session.execute(
                select(col(Digest.subscriber_id), col(Digest.period_key)).where(
                    col(Digest.subscriber_id).in_(chunk), col(Digest.period_key).in_(period_keys)
                )
            ).all()
        )
        last_end.update(
            (int(s), end)
            for s, end in session.execute(
                select(col(Digest.subscriber_id), func.max(col(Digest.window_end)))
                .where(col(Digest.subscriber_id).in_(chunk))
                .group_by(col(Digest.subscriber_id))
            ).all()
        )
    return Outlook(now, slots, keys, last_end)


def find_missed(session: Session, outlook: Outlook, *, settings: Settings) -> list[Due]:
    """A :class:`Due` for each missed previous period, its window reaching to now."""
    missed: list[Due] = []
    for slot in outlook.slots:
        if outlook.missed(slot):
            # find_due at the missed send time yields that period and the window since the
            # previous digest; the digest itself is recorded (window end) at ``now``.
            missed.extend(
                find_due(
                    session, now=slot.previous.send_at, settings=settings, only=slot.subscriber
                )
            )
    return missed


def work_waiting(session: Session, outlook: Outlook) -> bool:
    """True when a deliver run now has something to do: a due period, or a digest that is
    pending, failed and due for a retry, or left ``sending`` by a crash."""
    if any(outlook.due(slot) for slot in outlook.slots):
        return True
    now = outlook.now
    deliverable = (
        select(col(Digest.id))
        .where(
            or_(
                col(Digest.status) == "pending",
                (col(Digest.status) == "failed") & (col(Digest.next_attempt_at) <= now),
                (col(Digest.status) == "sending") & (col(Digest.created_at) <= now - STALE_SENDING),
            )
        )
        .limit(1)
    )
    return session.execute(deliverable).first() is not None


def next_deliveries(
    session: Session, *, now: datetime, settings: Settings, limit: int = 10
) -> list[dict[str, Any]]:
    """The next ``limit`` scheduled digests: who, which period, when (UTC; overdue = now)."""
    outlook = survey(session, now=now, settings=settings)
    planned: list[tuple[datetime, Subscriber, Period]] = []
    for slot in outlook.slots:
        if outlook.has_digest(slot, slot.current):
            period = following_period(slot.subscriber, slot.current)
        elif outlook.missed(slot):
            period = slot.previous
        else:
            period = slot.current
        planned.append((max(period.send_at, now), slot.subscriber, period))
    planned.sort(key=lambda item: (item[0], item[1].id or 0))
    return [
        {
            "email": subscriber.email,
            "frequency": subscriber.frequency,
            "timezone": subscriber.timezone,
            "period": period.key,
            "send_at": period.send_at.isoformat(),
            "local_send_at": period.send_at.astimezone(ZoneInfo(subscriber.timezone)).isoformat(),
            "overdue": period.send_at <= now,
        }
        for _, subscriber, period in planned[:limit]
    ]
