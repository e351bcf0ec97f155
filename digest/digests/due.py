"""Which digests are due at ``now``: current periods, missed periods, the next send times.

Every scheduled subscriber (active, digests on, not bounced out) has a *current* period (the
local day or ISO week containing ``now``) and a *previous* one. :func:`survey` reads, in a
few queries whatever the number of subscribers, which of those already have a digest and
when each subscriber's last digest window ended. From that :class:`Outlook`:

- the current period is **due** once its send time has passed and it has no digest;
- the previous period was **missed** (the service was down through its send time and came
  back before the current one's) when it has no digest, the subscriber was confirmed by its
  send time, and no digest was made since (the last window ended before that send time). A
  missed period is caught up once: its one digest covers everything since the previous
  digest, however long the outage. When the current period is due, its digest covers the
  gap instead.

:func:`find_due` returns both kinds, for ``digest run`` and the scheduler alike, each with the
window of papers it covers: since the subscriber's last digest, or ``lookback_days`` before
the period's send time for a first digest. Functions here take a session and never commit.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session, col

from digest.config.calendar import Frequency
from digest.digests.periods import (
    Period,
    following_period,
    is_due,
    period_for,
    previous_period,
)
from digest.ranking.base import Profile
from digest.store.db import one_of
from digest.store.models import Digest, Interest, Subscriber
from digest.subscribers.feedback import rated_papers
from digest.subscribers.library import InterestRow, Profiles

if TYPE_CHECKING:
    from digest.config.settings import Settings


@dataclass(frozen=True, slots=True)
class DueOptions:
    """The settings that decide who is due and what window a digest covers."""

    bounce_limit: int = 3
    lookback_days: int = 7
    min_score: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> DueOptions:
        return cls(settings.bounce_limit, settings.lookback_days, settings.min_score)


@dataclass(frozen=True, slots=True)
class Recipient:
    """What a run needs of a subscriber: read as plain columns (no ORM objects: a weekly
    run reads 100,000 of them)."""

    id: int
    email: str
    name: str | None
    token: str
    frequency: str
    weekday: int
    hour: int
    timezone: str
    max_items: int | None
    min_score: float | None
    popularity_weight: float
    confirmed_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, subscriber: Subscriber) -> Recipient:
        assert subscriber.id is not None
        return cls(*(getattr(subscriber, name) for name in _RECIPIENT_COLUMNS))


_RECIPIENT_COLUMNS = tuple(f.name for f in dataclasses.fields(Recipient))


@dataclass(slots=True)
class Due:
    """A subscriber whose period needs a digest, and the window of papers it covers."""

    subscriber: Recipient
    period: Period
    window_start: datetime
    profile: Profile
    missed: bool = False  # a period whose send time passed while nobody was running
    interests: tuple[str, ...] = ()  # the profile as the subscriber typed it (digest footer)


@dataclass(frozen=True, slots=True)
class Slot:
    """One scheduled subscriber's current and previous periods at ``now``."""

    subscriber: Recipient
    current: Period
    previous: Period


def _schedule(subscriber: Recipient) -> dict[str, Any]:
    return {
        "frequency": cast(Frequency, subscriber.frequency),
        "weekday": subscriber.weekday,
        "hour": subscriber.hour,
        "timezone": subscriber.timezone,
    }


def _periods(schedule: tuple[str, int, int, str], now: datetime) -> tuple[Period, Period] | None:
    frequency, weekday, hour, timezone = schedule
    kwargs: dict[str, Any] = {
        "frequency": cast(Frequency, frequency),
        "weekday": weekday,
        "hour": hour,
        "timezone": timezone,
    }
    current = period_for(now=now, **kwargs)
    if current is None:
        return None
    return current, previous_period(current, **kwargs)


def _slot(subscriber: Recipient, now: datetime, frequency: str | None = None) -> Slot | None:
    schedule = (
        frequency or subscriber.frequency,
        subscriber.weekday,
        subscriber.hour,
        subscriber.timezone,
    )
    periods = _periods(schedule, now)
    return None if periods is None else Slot(subscriber, *periods)


def _scheduled(session: Session, *, now: datetime, options: DueOptions) -> Iterator[Slot]:
    columns = [getattr(Subscriber, name) for name in _RECIPIENT_COLUMNS]
    statement = select(*columns).where(
        col(Subscriber.status) == "active",
        col(Subscriber.frequency) != "off",
        col(Subscriber.bounce_count) < options.bounce_limit,
    )
    # Periods per distinct schedule, not per subscriber: a few hundred at most.
    periods: dict[tuple[str, int, int, str], tuple[Period, Period] | None] = {}
    for row in session.execute(statement.order_by(col(Subscriber.id))):
        subscriber = Recipient(*row)
        schedule = (subscriber.frequency, subscriber.weekday, subscriber.hour, subscriber.timezone)
        if schedule not in periods:
            periods[schedule] = _periods(schedule, now)
        found = periods[schedule]
        if found is not None:
            yield Slot(subscriber, *found)


@dataclass(slots=True)
class Outlook:
    """Scheduled subscribers' periods at ``now`` and what the store says about them."""

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

    @property
    def anything_due(self) -> bool:
        return any(self.due(slot) or self.missed(slot) for slot in self.slots)


def _read_outlook(session: Session, slots: list[Slot], now: datetime) -> Outlook:
    ids = [slot.subscriber.id for slot in slots]
    if not ids:
        return Outlook(now, [], set(), {})
    # A handful of distinct keys ("weekly:2026-W48", "daily:2026-11-23"): one list is enough.
    period_keys = {slot.current.key for slot in slots} | {slot.previous.key for slot in slots}
    keys: set[tuple[int, str]] = set()
    last_end: dict[int, datetime] = {}
    for member in one_of(session, col(Digest.subscriber_id), ids):
        keys.update(
            (int(s), str(k))
            for s, k in session.execute(
                select(col(Digest.subscriber_id), col(Digest.period_key)).where(
                    member, col(Digest.period_key).in_(period_keys)
                )
            ).all()
        )
        last_end.update(
            (int(s), end)
            for s, end in session.execute(
                select(col(Digest.subscriber_id), func.max(col(Digest.window_end)))
                .where(member)
                .group_by(col(Digest.subscriber_id))
            ).all()
        )
    return Outlook(now, slots, keys, last_end)


def survey(session: Session, *, now: datetime, options: DueOptions) -> Outlook:
    """Read the :class:`Outlook` at ``now``: a few queries whatever the subscriber count."""
    return _read_outlook(session, list(_scheduled(session, now=now, options=options)), now)


def _interests(session: Session, ids: list[int]) -> dict[int, list[InterestRow]]:
    """Interest rows (kind, text, weight, position) per subscriber, as plain tuples (Core:
    a weekly run reads half a million of them)."""
    interests: dict[int, list[InterestRow]] = defaultdict(list)
    table = Interest.metadata.tables["interest"]
    columns = (table.c.subscriber_id, table.c.kind, table.c.text, table.c.weight, table.c.position)
    connection = session.connection()
    for member in one_of(session, table.c.subscriber_id, ids):
        rows = connection.execute(select(*columns).where(member))
        for subscriber_id, kind, text, weight, position in rows.all():
            interests[subscriber_id].append((kind, text, weight, position))
    return interests


def find_due(
    session: Session,
    *,
    now: datetime,
    options: DueOptions,
    only: Subscriber | None = None,
    ignore_existing: bool = False,
) -> list[Due]:
    """Every period that needs a digest at ``now``: due current periods and missed ones.

    ``only`` forces that subscriber's current period regardless of its send time (the
    ``--subscriber`` option and previews; a subscriber whose digests are off previews a
    weekly one); an existing digest for the period still wins unless ``ignore_existing``.
    """
    if only is not None:
        slot = _slot(Recipient.of(only), now, "weekly" if only.frequency == "off" else None)
        outlook = _read_outlook(session, [slot] if slot else [], now)
        wanted = [
            (s, s.current, False)
            for s in outlook.slots
            if ignore_existing or not outlook.has_digest(s, s.current)
        ]
    else:
        outlook = survey(session, now=now, options=options)
        wanted = []
        for s in outlook.slots:
            if outlook.due(s):
                wanted.append((s, s.current, False))
            elif outlook.missed(s):
                wanted.append((s, s.previous, True))
    if not wanted:
        return []
    ids = [s.subscriber.id or 0 for s, _, _ in wanted]
    interests = _interests(session, ids)
    rated = rated_papers(session, ids)  # the reader's feedback, learned from by the ranker
    lookback = timedelta(days=options.lookback_days)
    profiles = Profiles()
    due = []
    for slot, period, missed in wanted:
        subscriber = slot.subscriber
        profile, typed = profiles.build(subscriber, interests[subscriber.id])
        if profile.min_score is None and options.min_score is not None:
            profile = dataclasses.replace(profile, min_score=options.min_score)
        if subscriber.id in rated:
            profile = dataclasses.replace(profile, rated=rated[subscriber.id])
        # A missed period's window is what it would have been at its send time; its digest
        # is recorded (window end) at ``now``, so it also covers the outage.
        as_of = period.send_at if missed else now
        start = outlook.last_end.get(subscriber.id or 0) or as_of - lookback
        due.append(Due(subscriber, period, min(start, as_of), profile, missed, typed))
    return due


def next_deliveries(
    session: Session, *, now: datetime, options: DueOptions, limit: int = 10
) -> list[dict[str, Any]]:
    """The next ``limit`` scheduled digests: who, which period, when (UTC; overdue = now)."""
    outlook = survey(session, now=now, options=options)
    planned: list[tuple[datetime, Recipient, Period]] = []
    for slot in outlook.slots:
        if outlook.has_digest(slot, slot.current):
            period = following_period(slot.current, **_schedule(slot.subscriber))
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
