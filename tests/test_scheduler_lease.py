"""The scheduler lease on SQLite and PostgreSQL: one holder, standby, takeover, fencing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import col

from digest.config.settings import Settings
from digest.delivery import OutboxTransport
from digest.scheduler.lease import read_lease, release, try_acquire
from digest.scheduler.service import SchedulerService
from digest.store import db
from digest.store.models import Run
from tests.scheduler_support import FakeClock, add_papers, digests, outbox_files, subscribe, utc

T0 = utc(2026, 11, 23, 9, 0)  # a Monday, 09:00 UTC
TTL = timedelta(seconds=60)


def test_acquire_renew_expire_release(backend: str, settings: Settings) -> None:
    engine = db.get_engine(settings)

    def acquire(holder: str, at: timedelta) -> bool:
        with db.transaction(engine) as session:
            got = try_acquire(session, name="scheduler", holder=holder, now=T0 + at, ttl=TTL)
        return got is not None

    assert acquire("a", timedelta(0))
    assert not acquire("b", timedelta(seconds=1))  # held: the standby gets nothing
    assert acquire("a", timedelta(seconds=30))  # renewal
    with db.transaction(engine) as session:
        state = read_lease(session)
    assert state is not None
    assert (state.holder, state.acquired_at, state.heartbeat_at) == (
        "a",
        T0,
        T0 + timedelta(seconds=30),
    )
    assert state.expires_at == T0 + timedelta(seconds=90)
    assert not acquire("b", timedelta(seconds=89))
    assert acquire("b", timedelta(seconds=91))  # expired: taken over
    assert not acquire("a", timedelta(seconds=92))  # the old holder cannot renew any more
    with db.transaction(engine) as session:
        state = read_lease(session)
        assert state is not None and (state.holder, state.acquired_at) == (
            "b",
            T0 + timedelta(seconds=91),
        )
        assert not release(session, name="scheduler", holder="a", now=T0 + timedelta(seconds=93))
        assert release(session, name="scheduler", holder="b", now=T0 + timedelta(seconds=93))
    assert acquire("a", timedelta(seconds=94))  # released: free at once, no TTL wait


def test_standby_runs_nothing_and_takes_over_after_expiry(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    clock = FakeClock(T0)
    leader = SchedulerService(settings, clock=clock, holder="leader")
    standby = SchedulerService(settings, clock=clock, holder="standby")
    add_papers(settings, now=T0 - timedelta(hours=2), count=3)
    for name in ("ada", "bob"):
        subscribe(settings, f"{name}@example.org", hour=8, at=T0 - timedelta(days=1))

    assert leader.heartbeat() and not standby.heartbeat()
    assert standby.run_deliver() is None and standby.run_fetch() is None
    assert digests(settings) == []
    result = leader.run_deliver()
    assert result is not None and result.report is not None and result.report.sent == 2

    # The leader stops renewing (hung, partitioned): nobody may take over before expiry …
    clock.advance(timedelta(seconds=59))
    assert not standby.heartbeat()
    # … and once it has expired the standby takes over; the old leader can neither run a
    # job nor renew.
    clock.advance(timedelta(seconds=2))
    assert standby.heartbeat() and standby.is_leader
    assert leader.run_deliver() is None
    assert not leader.heartbeat() and not leader.is_leader

    clock.advance(timedelta(days=1))  # the next day's digests
    add_papers(settings, now=clock.now - timedelta(hours=1), count=2)
    assert standby.heartbeat() and not leader.heartbeat()
    assert leader.run_deliver() is None
    result = standby.run_deliver()
    assert result is not None and result.report is not None and result.report.sent == 2
    made = digests(settings)
    assert sorted((email, d.period_key) for email, d in made) == [
        ("ada@example.org", "daily:2026-11-23"),
        ("ada@example.org", "daily:2026-11-24"),
        ("bob@example.org", "daily:2026-11-23"),
        ("bob@example.org", "daily:2026-11-24"),
    ]
    assert all(d.attempts == 1 and d.status == "sent" for _, d in made)
    assert len(outbox_files(settings)) == 4


class SlowOutbox(OutboxTransport):
    """An outbox whose every message takes ``delay`` on the controlled clock, during which
    ``meanwhile`` happens (another process's heartbeat)."""

    def __init__(
        self,
        settings: Settings,
        clock: FakeClock,
        delay: timedelta,
        meanwhile: Callable[[], object],
    ) -> None:
        super().__init__(settings.resolved_outbox_dir)
        self.clock, self.delay, self.meanwhile = clock, delay, meanwhile

    def send_bytes(
        self, data: bytes, *, envelope_from: str, recipient: str, message_id: str
    ) -> None:
        super().send_bytes(
            data, envelope_from=envelope_from, recipient=recipient, message_id=message_id
        )
        self.clock.advance(self.delay)
        self.meanwhile()


def test_leader_that_loses_the_lease_mid_run_stops_before_the_next_message(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    clock = FakeClock(T0)
    standby = SchedulerService(settings, clock=clock, holder="standby")
    # the first message outlasts the lease, and the standby takes over in the meantime
    slow = SlowOutbox(settings, clock, TTL + timedelta(seconds=1), meanwhile=standby.heartbeat)
    leader = SchedulerService(
        settings, clock=clock, holder="leader", transport_factory=lambda: slow
    )
    add_papers(settings, now=T0 - timedelta(hours=2), count=3)
    for name in ("ada", "bob", "cy"):
        subscribe(settings, f"{name}@example.org", hour=8, at=T0 - timedelta(days=1))

    assert leader.heartbeat()
    assert leader.run_deliver() is None  # stopped by the fence after the first message
    statuses = sorted(d.status for _, d in digests(settings))
    # The second was not handed over: the leader handed its claims back before leaving.
    assert statuses == ["pending", "pending", "sent"]
    assert len(outbox_files(settings)) == 1
    with db.transaction(settings) as session:
        run = session.execute(select(Run).where(col(Run.kind) == "deliver")).scalar_one()
    assert run.status == "error" and run.error is not None and "no longer held" in run.error

    # The standby has taken over; the handed-back digests go at once. Nothing is sent twice,
    # and a digest never handed over used up no attempt.
    assert standby.is_leader and standby.heartbeat()
    standby.run_deliver()
    made = digests(settings)
    assert [d.status for _, d in made] == ["sent"] * 3
    assert sorted(d.attempts for _, d in made) == [1, 1, 1]
    assert len(outbox_files(settings)) == 3


@pytest.mark.parametrize(("heartbeat", "ttl"), [(31.0, 60.0), (15.0, 20.0)])
def test_heartbeat_must_be_at_most_half_the_ttl(
    heartbeat: float, ttl: float, make_settings: Callable[..., Settings]
) -> None:
    from digest.errors import ConfigError  # noqa: PLC0415 - used only on this path

    settings = make_settings(scheduler_heartbeat=heartbeat, scheduler_lease_ttl=ttl)
    with pytest.raises(ConfigError, match="at most half"):
        SchedulerService(settings)


def test_bad_fetch_cron_is_one_line_config_error(make_settings: Callable[..., Settings]) -> None:
    from digest.errors import ConfigError  # noqa: PLC0415 - used only on this path

    with pytest.raises(ConfigError, match="DIGEST_SCHEDULER_FETCH_CRON"):
        SchedulerService(make_settings(scheduler_fetch_cron="every hour"))


def test_racing_for_an_expired_lease_has_one_winner(backend: str, settings: Settings) -> None:
    engine = db.get_engine(settings)
    with db.transaction(engine) as session:
        assert try_acquire(session, name="scheduler", holder="old", now=T0, ttl=TTL)
    later = T0 + TTL + timedelta(seconds=1)
    barrier = threading.Barrier(8)
    winners: list[str] = []

    def contend(holder: str) -> None:
        barrier.wait()
        with db.transaction(engine) as session:
            if try_acquire(session, name="scheduler", holder=holder, now=later, ttl=TTL):
                winners.append(holder)

    threads = [threading.Thread(target=contend, args=(f"p{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(winners) == 1
    with db.transaction(engine) as session:
        state = read_lease(session)
    assert state is not None and state.holder == winners[0]


def test_a_leader_whose_heartbeats_were_held_up_renews_when_nobody_took_over(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    clock = FakeClock(T0)
    leader = SchedulerService(settings, clock=clock, holder="leader")
    add_papers(settings, now=T0 - timedelta(hours=2))
    subscribe(settings, "ada@example.org", hour=8, at=T0 - timedelta(days=1))
    assert leader.heartbeat()
    clock.advance(TTL * 2)  # e.g. renewals stuck behind a long SQLite write
    result = leader.run_deliver()  # the job renews on the spot: the lease was still free
    assert result is not None and result.report is not None and result.report.sent == 1
    with db.transaction(settings) as session:
        state = read_lease(session)
    assert state is not None and state.holder == "leader" and state.expires_at == clock.now + TTL
