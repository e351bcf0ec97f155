"""Periods and send times in the subscriber's zone, including the 2026 DST changes."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from digest.config.calendar import parse_weekday, validate_timezone
from digest.digests.periods import is_due, period_for
from digest.errors import ConfigError


def test_weekly_period_and_send_time() -> None:
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
    period = period_for("weekly", now=now, weekday=0, hour=8, timezone="Europe/London")
    assert period is not None
    assert period.key == "weekly:2026-W48"
    assert period.send_at == datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert is_due(period, now)
    assert not is_due(period, datetime(2026, 11, 23, 7, 59, tzinfo=UTC))


def test_daily_period_uses_local_date() -> None:
    # 23:30 UTC on the 23rd is already the 24th in Tokyo.
    now = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
    period = period_for("daily", now=now, weekday=0, hour=6, timezone="Asia/Tokyo")
    assert period is not None and period.key == "daily:2026-11-24"
    assert period.send_at == datetime(2026, 11, 23, 21, 0, tzinfo=UTC)


def test_off_has_no_period() -> None:
    assert period_for("off", now=datetime.now(UTC), weekday=0, hour=8, timezone="UTC") is None


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Berlin", datetime(2026, 3, 27, tzinfo=UTC)),  # spring forward 29 March
        ("Europe/Berlin", datetime(2026, 10, 23, tzinfo=UTC)),  # fall back 25 October
        ("America/New_York", datetime(2026, 3, 6, tzinfo=UTC)),  # spring forward 8 March
        ("America/New_York", datetime(2026, 10, 30, tzinfo=UTC)),  # fall back 1 November
    ],
)
@pytest.mark.parametrize("hour", [0, 1, 2, 3, 8])
def test_dst_no_skipped_or_doubled_daily_period(zone: str, start: datetime, hour: int) -> None:
    """Walking a clock through a DST change in 15-minute steps gives each day exactly once."""
    due_periods: list[str] = []
    now = start
    while now < start + timedelta(days=5):
        period = period_for("daily", now=now, weekday=0, hour=hour, timezone=zone)
        if is_due(period, now) and period is not None and period.key not in due_periods:
            due_periods.append(period.key)
        now += timedelta(minutes=15)
    days = [p.removeprefix("daily:") for p in due_periods]
    assert len(days) == len(set(days))
    assert len(days) in (5, 6)  # every local day in the window, none twice
    for a, b in itertools.pairwise(days):
        assert (datetime.fromisoformat(b) - datetime.fromisoformat(a)).days == 1


def test_nonexistent_local_time_resolves_forward() -> None:
    # 02:30 does not exist in Berlin on 29 March 2026: the digest goes at 03:30 local.
    period = period_for(
        "daily",
        now=datetime(2026, 3, 29, 12, tzinfo=UTC),
        weekday=0,
        hour=2,
        timezone="Europe/Berlin",
    )
    assert period is not None
    assert period.send_at == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_timezone_and_weekday_validation() -> None:
    assert validate_timezone("Europe/Paris") == "Europe/Paris"
    with pytest.raises(ConfigError, match="unknown time zone"):
        validate_timezone("Mars/Olympus")
    assert parse_weekday("Friday") == 4
    assert parse_weekday("sun") == 6
    assert parse_weekday("2") == 2
    with pytest.raises(ConfigError):
        parse_weekday("someday")
    with pytest.raises(ConfigError):
        parse_weekday(7)
