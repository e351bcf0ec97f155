"""When digests are due: periods and send times, per subscriber, in their own time zone.

A period is a local calendar day (daily) or ISO week (weekly). A digest for a period is due
once the subscriber's local send time in that period has passed. Periods are keyed by their
local date, so DST changes neither skip nor double a digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from digest.config.calendar import Frequency


@dataclass(frozen=True, slots=True)
class Period:
    """One digest period of one subscriber."""

    key: str  # "daily:2026-11-23" or "weekly:2026-W48"
    label: str  # human label for subjects and pages
    send_at: datetime  # UTC instant the digest becomes due
    start: date  # first local day of the period


def _localize(day: date, hour: int, zone: ZoneInfo) -> datetime:
    # A nonexistent local time (spring forward) resolves forward; an ambiguous one (fall
    # back) takes the first occurrence (fold=0). Either way exactly one instant per period.
    local = datetime.combine(day, time(hour), tzinfo=zone)
    roundtrip = local.astimezone(UTC).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != local.replace(tzinfo=None):
        local = roundtrip
    return local.astimezone(UTC)


def period_for(
    frequency: Frequency, *, now: datetime, weekday: int, hour: int, timezone: str
) -> Period | None:
    """The period containing ``now`` in the subscriber's zone (None when frequency is off)."""
    if frequency == "off":
        return None
    zone = ZoneInfo(timezone)
    local_day = now.astimezone(zone).date()
    if frequency == "daily":
        return Period(
            key=f"daily:{local_day.isoformat()}",
            label=local_day.strftime("%A %d %b %Y"),
            send_at=_localize(local_day, hour, zone),
            start=local_day,
        )
    monday = local_day - timedelta(days=local_day.weekday())
    iso = monday.isocalendar()
    return Period(
        key=f"weekly:{iso.year}-W{iso.week:02d}",
        label=f"week of {monday.strftime('%d %b %Y')}",
        send_at=_localize(monday + timedelta(days=weekday), hour, zone),
        start=monday,
    )


def is_due(period: Period | None, now: datetime) -> bool:
    """True when the period's send time has passed."""
    return period is not None and now >= period.send_at


def _period_at_day(
    frequency: Frequency, weekday: int, hour: int, timezone: str, day_offset: int, period: Period
) -> Period:
    """The period containing local noon ``day_offset`` days from ``period``'s first day."""
    zone = ZoneInfo(timezone)
    # local noon is never in a DST gap or overlap, so it lands unambiguously in that day
    noon = datetime.combine(period.start + timedelta(days=day_offset), time(12), tzinfo=zone)
    other = period_for(frequency, now=noon, weekday=weekday, hour=hour, timezone=timezone)
    assert other is not None  # frequency is not "off" when a period exists
    return other


def previous_period(
    period: Period, *, frequency: Frequency, weekday: int, hour: int, timezone: str
) -> Period:
    """The period before ``period`` (the day or ISO week before)."""
    return _period_at_day(frequency, weekday, hour, timezone, -1, period)


def following_period(
    period: Period, *, frequency: Frequency, weekday: int, hour: int, timezone: str
) -> Period:
    """The period after ``period``."""
    offset = 1 if frequency == "daily" else 7
    return _period_at_day(frequency, weekday, hour, timezone, offset, period)
