"""The deliver job on a controlled clock across the 2026 DST changes: every period's digest
goes out exactly once, at the first tick at or after its local send time, none skipped.

The expected digests come from an oracle independent of ``digest.digests.periods``: walking the
same ticks, a daily subscriber's digest for local date D is due at the first tick whose
local time on D has reached the hour; a weekly one's at the first tick of the ISO week whose
(weekday, hour) has reached the subscriber's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from digest.config.settings import Settings
from digest.scheduler.service import SchedulerService
from tests.scheduler_support import FakeClock, add_papers, digests, outbox_files, subscribe, utc

HOURS = (0, 1, 2, 3, 8)
EUROPE = ("Europe/Berlin", "Europe/London")
AMERICA = ("America/New_York", "America/Los_Angeles")
STEP = timedelta(minutes=15)
SUNDAY = 6

# (transition Sunday 00:00 UTC, zones that change that day); each window runs from Saturday
# to Tuesday 00:00 UTC, so the daily periods before, on and after the change and the weekly
# one on it are all seen, in every zone.
TRANSITIONS = {
    "europe-spring": (utc(2026, 3, 29), EUROPE),
    "europe-fall": (utc(2026, 10, 25), EUROPE),
    "america-spring": (utc(2026, 3, 8), AMERICA),
    "america-fall": (utc(2026, 11, 1), AMERICA),
}


def expected_digests(
    plans: dict[str, tuple[str, int, str, int]], ticks: list[datetime]
) -> dict[tuple[str, str], datetime]:
    """(email, period key) → the tick at which its digest must be made."""
    expected: dict[tuple[str, str], datetime] = {}
    for email, (frequency, hour, zone, weekday) in plans.items():
        for tick in ticks:
            local = tick.astimezone(ZoneInfo(zone))
            if frequency == "daily":
                key, reached = f"daily:{local.date().isoformat()}", local.hour >= hour
            else:
                iso = local.isocalendar()
                key = f"weekly:{iso.year}-W{iso.week:02d}"
                reached = (local.weekday(), local.hour) >= (weekday, hour)
            if reached:
                expected.setdefault((email, key), tick)
    return expected


def drive(settings: Settings, start: datetime, end: datetime) -> list[datetime]:
    """Heartbeat + deliver every STEP from start to end; a new paper every 6 hours."""
    clock = FakeClock(start)
    service = SchedulerService(settings, clock=clock)
    ticks = []
    while clock.now <= end:
        if clock.now.hour % 6 == 0 and clock.now.minute == 0:
            add_papers(settings, now=clock.now - timedelta(minutes=1))
        assert service.heartbeat()
        service.run_deliver()
        ticks.append(clock.now)
        clock.advance(STEP)
    return ticks


def check_window(settings: Settings, transition: datetime, zones: tuple[str, ...]) -> None:
    start, end = transition - timedelta(days=1), transition + timedelta(days=2)
    plans: dict[str, tuple[str, int, str, int]] = {}
    for zone in zones:
        for hour in HOURS:
            for frequency in ("daily", "weekly"):
                city = zone.split("/")[1].lower().replace("_", "-")
                email = f"{frequency}-h{hour}@{city}.example.org"
                plans[email] = (frequency, hour, zone, SUNDAY)
                subscribe(
                    settings,
                    email,
                    frequency=frequency,
                    hour=hour,
                    timezone=zone,
                    weekday=SUNDAY,
                    at=start,
                )
    ticks = drive(settings, start, end)

    made = {(email, d.period_key): d.created_at for email, d in digests(settings)}
    assert made == expected_digests(plans, ticks)
    sent = [d for _, d in digests(settings) if d.status == "sent"]
    assert all(d.status in ("sent", "empty") for _, d in digests(settings))
    assert len(sent) > len(plans)  # papers kept coming: digests were real emails
    assert len(outbox_files(settings)) == len(sent)  # one .eml per digest, none twice
    # the weekly digest of the transition Sunday, for each zone and hour, is among them
    week = transition.isocalendar()
    assert {key for (_, key) in made if key.startswith("weekly")} >= {
        f"weekly:{week.year}-W{week.week:02d}"
    }


@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_each_period_once_across_dst(name: str, make_settings: Callable[..., Settings]) -> None:
    transition, zones = TRANSITIONS[name]
    check_window(make_settings(), transition, zones)
