"""The always-on scheduler: APScheduler 3.11 wiring, the lease, standby, clean shutdown.

The only module that imports APScheduler. One ``BackgroundScheduler`` per process runs:

- ``lease`` (every heartbeat, own executor): take or renew the database lease. Gaining it
  schedules the two jobs below; losing it removes them. A process without the lease is on
  standby: it runs only this job, and takes over once the leader's lease expires.
- ``fetch`` (cron from settings, UTC) and ``deliver`` (every few minutes): run on a single
  worker thread, one after the other. Serial on purpose: a digest window that ended while a
  fetch was still uncommitted would never cover that fetch's papers.

Stopping (SIGTERM/SIGINT): no new job starts, the running one finishes while the lease is
still renewed, then the lease is released so a standby takes over at its next heartbeat.
The runner commits per digest, so even a hard kill leaves only resumable state.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from apscheduler.executors.pool import (  # type: ignore[import-untyped]  # APScheduler 3 is untyped
    ThreadPoolExecutor,
)
from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]  # APScheduler 3.x ships no type hints
from apscheduler.schedulers.background import (  # type: ignore[import-untyped]  # APScheduler 3.x ships no type hints
    BackgroundScheduler,
)
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]  # APScheduler 3.x ships no type hints
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]  # APScheduler 3.x ships no type hints
from sqlalchemy import func, select
from sqlmodel import col

from digest.config.settings import Settings
from digest.delivery.base import Transport
from digest.errors import ConfigError
from digest.scheduler.jobs import DeliverResult, deliver_job, fetch_job
from digest.scheduler.lease import Lease, LeaseLostError, read_lease
from digest.store import db
from digest.store.models import Run

if TYPE_CHECKING:
    from digest.sources.fetcher import FetchReport

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
T = TypeVar("T")
JOBS, LEASE = "jobs", "lease"  # executor names


def system_clock() -> datetime:
    """The real time, aware UTC."""
    return datetime.now(UTC)


def fetch_trigger(settings: Settings) -> Any | None:
    """The fetch job's cron trigger (UTC), None when fetching is ``off``; ConfigError if bad."""
    text = settings.scheduler_fetch_cron.strip()
    if text.lower() in ("", "off"):
        return None
    try:
        return CronTrigger.from_crontab(text, timezone=UTC)
    except ValueError as exc:
        raise ConfigError(f"DIGEST_SCHEDULER_FETCH_CRON {text!r}: {exc}") from None


class SchedulerService:
    """One process's scheduler. ``heartbeat``/``run_deliver``/``run_fetch`` are also the
    controlled-clock API used by tests; ``start``/``stop`` run them on APScheduler."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        holder: str | None = None,
        transport_factory: Callable[[], Transport] | None = None,
    ) -> None:
        if settings.scheduler_heartbeat * 2 > settings.scheduler_lease_ttl:
            # two chances to renew before the lease lapses, or a slow heartbeat hands over
            raise ConfigError(
                "DIGEST_SCHEDULER_HEARTBEAT must be at most half DIGEST_SCHEDULER_LEASE_TTL"
            )
        self.settings = settings
        self.clock = clock
        self.cron = fetch_trigger(settings)
        self.lease = Lease(
            db.get_engine(settings),
            ttl=timedelta(seconds=settings.scheduler_lease_ttl),
            holder=holder,
        )
        self.transport_factory = transport_factory
        self._leader = False
        self._announced_standby = False
        self._stopping = threading.Event()
        self._busy = threading.Lock()  # held while fetch or deliver runs
        self._scheduler: Any | None = None

    @property
    def holder(self) -> str:
        return self.lease.holder

    @property
    def is_leader(self) -> bool:
        return self._leader

    # --- the three jobs, callable directly on a controlled clock ------------------------

    def heartbeat(self) -> bool:
        """Take or renew the lease; schedule or unschedule the jobs on a change."""
        if self._stopping.is_set() and not self._leader:
            return False  # stopping on standby: never take over now
        now = self.clock()
        leader = self.lease.acquire(now)
        if leader and not self._leader:
            log.info("lease acquired by %s (ttl %ss)", self.holder, self.lease.ttl.total_seconds())
            self._leader, self._announced_standby = True, False
            self._schedule_jobs(now)
        elif not leader and self._leader:
            log.warning("lease lost by %s: stopping jobs", self.holder)
            self._leader = False
            self._unschedule_jobs()
        elif not leader and not self._announced_standby:
            self._announced_standby = True
            with db.transaction(self.lease.engine) as session:
                state = read_lease(session, self.lease.name)
            if state is not None:
                log.info(
                    "standby: %s waits; lease held by %s until %s",
                    self.holder,
                    state.holder,
                    state.expires_at.isoformat(timespec="seconds"),
                )
        return leader

    def run_deliver(self) -> DeliverResult | None:
        """One deliver run if this process leads; None on standby or while stopping."""
        return self._exclusive("deliver", self._deliver)

    def run_fetch(self) -> FetchReport | None:
        """One fetch of every source if this process leads; None otherwise."""
        return self._exclusive("fetch", self._fetch)

    def _exclusive(self, name: str, job: Callable[[datetime], T]) -> T | None:
        with self._busy:
            if self._stopping.is_set():
                return None
            now = self.clock()
            try:
                self.lease.ensure(now)
            except LeaseLostError:
                log.debug("%s skipped: %s is not the leader", name, self.holder)
                return None
            return job(now)

    def _deliver(self, now: datetime) -> DeliverResult | None:
        transport = self.transport_factory() if self.transport_factory else None
        try:
            result = deliver_job(
                self.settings,
                now=now,
                transport=transport,
                fence=lambda: self.lease.ensure(self.clock()),
            )
        except LeaseLostError as exc:
            log.warning("deliver stopped before the next message: %s", exc)
            return None
        if not result.idle:
            log.info("deliver done at %s: %s", now.isoformat(timespec="seconds"), result.summary())
        return result

    def _fetch(self, now: datetime) -> FetchReport:
        log.info("fetch start at %s", now.isoformat(timespec="seconds"))
        report = fetch_job(self.settings, now=now)
        log.info(
            "fetch done: sources=%d new=%d seen=%d failed=%d",
            len(report.sources),
            report.new,
            report.seen,
            len(report.failed),
        )
        return report

    # --- APScheduler wiring -----------------------------------------------------------

    def start(self) -> None:
        """Start the background scheduler; the first heartbeat runs at once."""
        grace = max(1, round(self.settings.scheduler_misfire_grace))
        scheduler = BackgroundScheduler(
            executors={
                # one worker: fetch and deliver never overlap (see the module docstring)
                JOBS: ThreadPoolExecutor(max_workers=1),
                # the lease has its own thread, so a long job never delays a renewal
                LEASE: ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={
                # after a pause (suspend, long job) run a job once, not once per missed
                # fire: delivery is driven by data, so one run catches everything up
                "coalesce": True,
                # a job never overlaps itself; a run still going when the next fire comes
                # makes that fire a no-op
                "max_instances": 1,
                # a fire late by less than this still runs; a later one is dropped for the
                # next regular fire, which loses nothing for the same reason
                "misfire_grace_time": grace,
            },
            timezone=UTC,
        )
        scheduler.add_job(
            self._guarded("lease", self.heartbeat),
            IntervalTrigger(seconds=self.settings.scheduler_heartbeat, timezone=UTC),
            id="lease",
            name="lease",
            executor=LEASE,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,  # a late renewal is still worth doing
        )
        self._scheduler = scheduler
        _route_apscheduler_logs()
        scheduler.start()
        log.info("scheduler %s started", self.holder)

    def stop(self) -> None:
        """Take no new work, let the running job finish, release the lease, shut down."""
        self._stopping.set()
        self._unschedule_jobs()
        with self._busy:  # waits for a running job; the lease job keeps renewing meanwhile
            pass
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self._leader:
            self.lease.release(self.clock())
            self._leader = False
            log.info("lease released by %s", self.holder)
        log.info("scheduler %s stopped", self.holder)

    def job_options(self) -> dict[str, dict[str, Any]]:
        """The scheduled jobs and their APScheduler options (introspection, tests)."""
        if self._scheduler is None:
            return {}
        return {
            job.id: {
                "trigger": str(job.trigger),
                "executor": job.executor,
                "coalesce": job.coalesce,
                "max_instances": job.max_instances,
                "misfire_grace_time": job.misfire_grace_time,
                "next_run_time": job.next_run_time,
            }
            for job in self._scheduler.get_jobs()
        }

    def _schedule_jobs(self, now: datetime) -> None:
        scheduler = self._scheduler
        if scheduler is None or self._stopping.is_set():
            return
        wall = datetime.now(UTC)
        if self.cron is not None:
            # a fetch missed while no scheduler ran happens first, then the regular cron
            missed = self._fetch_missed(self.cron, now)
            scheduler.add_job(
                self._guarded("fetch", self.run_fetch),
                self.cron,
                id="fetch",
                name="fetch",
                executor=JOBS,
                replace_existing=True,
                **({"next_run_time": wall} if missed else {}),
            )
        scheduler.add_job(
            self._guarded("deliver", self.run_deliver),
            IntervalTrigger(seconds=self.settings.scheduler_deliver_interval, timezone=UTC),
            id="deliver",
            name="deliver",
            executor=JOBS,
            replace_existing=True,
            next_run_time=wall + timedelta(seconds=1),  # catch up at once, after a fetch
        )

    def _fetch_missed(self, cron: Any, now: datetime) -> bool:
        with db.transaction(self.lease.engine) as session:
            last = session.execute(
                select(func.max(col(Run.started_at))).where(col(Run.kind) == "fetch")
            ).scalar()
        return last is None or bool(cron.get_next_fire_time(None, last) <= now)

    def _unschedule_jobs(self) -> None:
        if self._scheduler is None:
            return
        for job_id in ("fetch", "deliver"):
            with contextlib.suppress(JobLookupError):  # not scheduled (standby)
                self._scheduler.remove_job(job_id)

    @staticmethod
    def _guarded(name: str, job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception:  # a scheduled job must not die silently; the traceback is logged
                log.exception("%s job failed", name)

        return run


def _route_apscheduler_logs() -> None:
    # APScheduler's own warnings (a run skipped because the previous one still runs) go
    # through our handler, so they are one line each, in JSON when configured.
    ours = logging.getLogger("digest")
    theirs = logging.getLogger("apscheduler")
    theirs.handlers = list(ours.handlers)
    theirs.propagate = False
    theirs.setLevel(logging.WARNING)
