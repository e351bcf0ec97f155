"""Downtime: a send time missed while no scheduler ran is caught up once on restart, and a
long outage ends in one digest whose window covers the whole gap."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from digest.config.settings import Settings
from digest.scheduler.service import SchedulerService
from digest.store import db
from digest.store.models import DigestItem, Paper
from tests.scheduler_support import FakeClock, add_papers, digests, outbox_files, subscribe, utc

STEP = timedelta(minutes=15)


def run_for(service: SchedulerService, clock: FakeClock, until: datetime) -> None:
    """The service up and ticking every STEP until ``until``."""
    while clock.now < until:
        assert service.heartbeat()
        service.run_deliver()
        clock.advance(STEP)


def papers_of(settings: Settings, digest_id: int) -> set[str]:
    with db.transaction(settings) as session:
        rows = session.execute(
            select(col(Paper.title))
            .join(DigestItem, col(DigestItem.paper_id) == col(Paper.id))
            .where(col(DigestItem.digest_id) == digest_id)
        ).scalars()
        return set(rows)


def titles_seen_between(settings: Settings, start: datetime, end: datetime) -> set[str]:
    with db.transaction(settings) as session:
        rows = session.execute(
            select(col(Paper.title)).where(
                col(Paper.first_seen_at) > start, col(Paper.first_seen_at) <= end
            )
        ).scalars()
        return set(rows)


def test_missed_daily_send_goes_out_once_on_restart(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    monday = utc(2026, 11, 23)
    subscribe(settings, "ada@example.org", hour=8, timezone="Europe/Berlin", at=monday)
    clock = FakeClock(monday)
    add_papers(settings, now=monday + timedelta(hours=5))
    run_for(SchedulerService(settings, clock=clock), clock, monday + timedelta(hours=12))
    assert [d.period_key for _, d in digests(settings)] == ["daily:2026-11-23"]

    # Down from Monday noon to Wednesday 05:00 UTC (06:00 in Berlin): Tuesday's 08:00 passed
    # unseen, Wednesday's has not come yet. Papers kept arriving (another process imports).
    for hours in (14, 20, 30, 40):
        add_papers(settings, now=monday + timedelta(hours=hours))
    clock.now = utc(2026, 11, 25, 5, 0)
    restarted = SchedulerService(settings, clock=clock)
    run_for(restarted, clock, utc(2026, 11, 25, 7, 30))  # past Wednesday's send time

    made = digests(settings)
    assert [d.period_key for _, d in made] == [
        "daily:2026-11-23",
        "daily:2026-11-24",  # the missed one, once, at restart
        "daily:2026-11-25",
    ]
    missed = made[1][1]
    assert missed.created_at == utc(2026, 11, 25, 5, 0) and missed.status == "sent"
    assert missed.window_start == made[0][1].window_end and missed.window_end == missed.created_at
    assert missed.id is not None
    assert papers_of(settings, missed.id) == titles_seen_between(
        settings, missed.window_start, missed.window_end
    )
    assert len(papers_of(settings, missed.id)) == 4
    assert made[2][1].created_at == utc(2026, 11, 25, 7, 0)  # 08:00 in Berlin, on time
    assert len(outbox_files(settings)) == 2  # Wednesday's found nothing new: empty, no mail
    assert made[2][1].status == "empty"


def test_restart_after_the_send_time_makes_one_digest_not_two(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    monday = utc(2026, 11, 23)
    subscribe(settings, "ada@example.org", hour=8, at=monday)
    clock = FakeClock(monday)
    add_papers(settings, now=monday + timedelta(hours=1))
    run_for(SchedulerService(settings, clock=clock), clock, monday + timedelta(hours=9))
    add_papers(settings, now=monday + timedelta(days=1), count=2)
    # Back on Wednesday 10:00, after Wednesday's send time: the current period's digest covers
    # the gap; Tuesday gets none of its own.
    clock.now = utc(2026, 11, 25, 10, 0)
    run_for(SchedulerService(settings, clock=clock), clock, utc(2026, 11, 25, 12, 0))
    made = digests(settings)
    assert [d.period_key for _, d in made] == ["daily:2026-11-23", "daily:2026-11-25"]
    assert made[1][1].window_start == made[0][1].window_end
    assert made[1][1].item_count == 2


def test_three_week_outage_ends_in_one_digest_covering_the_gap(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(max_items=50)
    start = utc(2026, 10, 26, 11, 0)  # Monday 07:00 in New York (EST from 1 November)
    subscribe(
        settings,
        "grace@example.org",
        frequency="weekly",
        hour=8,
        timezone="America/New_York",
        weekday=0,
        at=start,
    )
    add_papers(settings, now=start + timedelta(hours=1))
    clock = FakeClock(start)
    run_for(SchedulerService(settings, clock=clock), clock, start + timedelta(hours=14))
    first = digests(settings)
    assert [d.period_key for _, d in first] == ["weekly:2026-W44"]

    # Down for three weeks; a paper every other day meanwhile.
    outage_end = utc(2026, 11, 23, 10, 0)  # Monday 05:00 in New York, before 08:00
    for day in range(1, 28, 2):
        add_papers(settings, now=start + timedelta(days=day))
    clock.now = outage_end
    run_for(SchedulerService(settings, clock=clock), clock, utc(2026, 11, 23, 12, 0))

    made = digests(settings)
    assert [d.period_key for _, d in made] == ["weekly:2026-W44", "weekly:2026-W47"]
    gap = made[1][1]
    assert gap.created_at == outage_end  # at restart, not three times, not at the next send
    assert gap.window_start == first[0][1].window_end and gap.window_end == outage_end
    assert gap.id is not None
    during = titles_seen_between(settings, first[0][1].window_end, outage_end)
    assert len(during) == 14 and papers_of(settings, gap.id) == during  # all eligible
    # Monday 08:00 in New York: this week's own digest, with nothing new since the restart.
    run_for(SchedulerService(settings, clock=clock), clock, utc(2026, 11, 23, 14, 0))
    made = digests(settings)
    assert [(d.period_key, d.status) for _, d in made] == [
        ("weekly:2026-W44", "sent"),
        ("weekly:2026-W47", "sent"),
        ("weekly:2026-W48", "empty"),
    ]
    assert made[2][1].created_at == utc(2026, 11, 23, 13, 0)
    assert len(outbox_files(settings)) == 2


def test_a_new_subscriber_gets_no_catch_up_for_a_period_before_they_joined(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    joined = utc(2026, 11, 24, 6, 0)  # Tuesday, before the 08:00 send; Monday's was earlier
    add_papers(settings, now=joined - timedelta(hours=1))
    subscribe(settings, "new@example.org", hour=8, at=joined)
    clock = FakeClock(joined)
    run_for(SchedulerService(settings, clock=clock), clock, utc(2026, 11, 24, 7, 59))
    assert digests(settings) == []
    run_for(SchedulerService(settings, clock=clock), clock, utc(2026, 11, 24, 8, 30))
    assert [d.period_key for _, d in digests(settings)] == ["daily:2026-11-24"]
