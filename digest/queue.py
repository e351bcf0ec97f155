"""Scale-out on PostgreSQL: delivery batches as procrastinate jobs, run by ``digest worker``.

With ``DIGEST_QUEUE=procrastinate`` (PostgreSQL only), ``digest run`` (and the scheduler's
deliver job) records the digests as usual and, **in the same transaction**, defers one
``deliver_batch`` job per batch of ready digests (``delivery_batch`` ids, with a queueing
lock per batch). Any number of ``digest worker`` processes, on any number of machines, take
jobs; each job delivers its batch exactly as an in-process run does
(:mod:`digest.delivery.pipeline`): claim under the worker's own claimant, render, send,
record. Nothing else changes, so the ledger's guarantees hold across machines.

A worker killed mid-batch stops renewing two heartbeats: procrastinate's (its job is
``doing`` under a dead worker) and our claimant's (its claims are void). Every worker runs
:func:`sweep_stalled` every few seconds: it re-queues the jobs of workers silent for
:data:`STALLED_AFTER` seconds; the retried job claims what is still unsent — including what
the dead worker had claimed — and delivers it. Only messages in flight at the kill can
arrive twice, with the same Message-ID.

Procrastinate's schema is applied by :func:`ensure_schema` (``digest db upgrade`` and
``digest worker`` call it; idempotent, serialized by an advisory lock).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import procrastinate
from procrastinate import exceptions as pexceptions
from procrastinate.schema import SchemaManager
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from digest.config.settings import Settings, load_settings
from digest.delivery import make_sender
from digest.delivery.message import MessageOptions
from digest.delivery.pipeline import Delivery
from digest.delivery.renderpool import RenderPool, RenderSetup
from digest.digests.claims import ClaimantLease
from digest.errors import ConfigError
from digest.render.assemble import ViewOptions
from digest.store import db

log = logging.getLogger(__name__)

QUEUE = "digests"
HEARTBEAT = 2.0  # seconds between a worker's heartbeats
STALLED_AFTER = 3 * HEARTBEAT  # a worker silent this long is dead: its jobs are re-queued
SWEEP_EVERY = 2.0  # seconds between sweeps for stalled jobs


def conninfo(settings: Settings) -> str:
    """The libpq connection string of the configured PostgreSQL database."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigError(
            "DIGEST_QUEUE=procrastinate needs PostgreSQL (DIGEST_DATABASE_URL); "
            "SQLite delivers in process"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


app = procrastinate.App(
    # The worker swaps in a connector for the configured database (run_worker); deferring
    # goes through the run's own connection and needs none.
    connector=procrastinate.PsycopgConnector(),
    import_paths=["digest.queue"],
    worker_defaults={
        "update_heartbeat_interval": HEARTBEAT,
        "stalled_worker_timeout": STALLED_AFTER,
        "fetch_job_polling_interval": 1.0,
        "delete_jobs": "successful",
    },
)


def ensure_schema(engine: Engine) -> bool:
    """Apply procrastinate's schema unless present; whether it was applied now."""
    with db.transaction(engine) as session:
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('digest-procrastinate'))"))
        if session.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar():
            return False
        sql = SchemaManager.get_schema()
        raw = session.connection().connection.driver_connection
        assert raw is not None
        raw.execute(sql)  # the driver's own execute: the SQL has % signs
    log.info("procrastinate schema applied")
    return True


def defer_batches(session: Session, digest_ids: Sequence[int], *, now: datetime, batch: int) -> int:
    """Defer one ``deliver_batch`` job per ``batch`` ids, on the session's own transaction
    (committed with it); how many jobs. A batch already queued (same ids) is skipped."""
    raw = session.connection().connection.driver_connection
    deferred = 0
    for start in range(0, len(digest_ids), batch):
        ids = list(digest_ids[start : start + batch])
        lock = f"digests:{ids[0]}-{ids[-1]}:{len(ids)}"
        try:
            with session.begin_nested():  # a failed defer must not poison the transaction
                raw = session.connection().connection.driver_connection
                args: dict[str, Any] = {"digest_ids": ids, "now": now.isoformat()}
                deliver_batch.configure(connection=raw, queueing_lock=lock).defer(**args)
        except pexceptions.AlreadyEnqueued:
            log.info("batch %s is already queued", lock)
            continue
        deferred += 1
    del raw
    return deferred


@app.task(name="digest.deliver_batch", queue=QUEUE, retry=5)
def deliver_batch(digest_ids: list[int], now: str) -> dict[str, Any]:
    """Deliver one batch (a job): claim, render, send, record — the pipeline of a run."""
    settings = load_settings()
    engine = db.get_engine(settings)
    moment = datetime.fromisoformat(now)
    setup = RenderSetup(
        templates_dir=settings.templates_dir,
        site_name=settings.site_name,
        views=ViewOptions.from_settings(settings),
        message=MessageOptions.from_settings(settings),
        sent_at=moment,
    )
    with (
        ClaimantLease(engine, kind="worker") as claimant,
        RenderPool(setup, {}, processes=1) as pool,
        make_sender(settings, engine=engine) as sender,
    ):
        assert claimant.id is not None
        result = Delivery(
            engine,
            claimant=claimant.id,
            sender=sender,
            render=pool,
            now=moment,
            bounce_limit=settings.bounce_limit,
            give_up_after=timedelta(days=settings.delivery_give_up_days),
            envelope_from=settings.envelope_from,
            batch_size=settings.delivery_batch,
        ).run(digest_ids)
    log.info("batch of %d: %d sent, %d failed", len(digest_ids), result.sent, result.failed)
    return {"sent": result.sent, "failed": result.failed, "stopped": result.stopped}


async def sweep_stalled(manager: Any) -> int:
    """Re-queue the delivery jobs of workers that stopped beating (killed, machine gone)."""
    stalled = await manager.get_stalled_jobs(
        queue=QUEUE, task_name="digest.deliver_batch", seconds_since_heartbeat=STALLED_AFTER
    )
    count = 0
    for job in stalled:
        log.warning("job %s of a dead worker is re-queued", job.id)
        await manager.retry_job(job)
        count += 1
    return count


async def _sweeper(manager: Any) -> None:
    # Beside the job slots, not in one: a sweep never waits behind deliveries, and never
    # takes a slot a delivery could use. Every worker sweeps; a job retried twice at once
    # is harmless (the second retry finds it no longer stalled).
    while True:
        await asyncio.sleep(SWEEP_EVERY)
        try:
            await sweep_stalled(manager)
        except Exception:  # the database away for a moment: sweep again later
            log.exception("sweeping stalled jobs failed")


def run_worker(settings: Settings, *, concurrency: int, wait: bool = True) -> None:
    """Run a worker until SIGTERM/SIGINT (or, without ``wait``, until the queue is empty)."""
    info = conninfo(settings)
    ensure_schema(db.get_engine(settings))
    connector = procrastinate.PsycopgConnector(conninfo=info, min_size=1, max_size=4)

    async def main() -> None:
        # Sync jobs run in the loop's default executor: give it one thread per job slot.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="digest-job")
        )
        with app.replace_connector(connector):
            async with app.open_async():
                sweeper = asyncio.create_task(_sweeper(app.job_manager))
                try:
                    await app.run_worker_async(
                        queues=[QUEUE], concurrency=concurrency, wait=wait, name="digest-worker"
                    )
                finally:
                    sweeper.cancel()

    asyncio.run(main())


def queued(settings: Settings) -> int:
    """Jobs of the delivery queue not finished yet (waiting or running)."""
    with db.transaction(settings) as session:
        return int(
            session.execute(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = :q "
                    "AND task_name = 'digest.deliver_batch' AND status IN ('todo', 'doing')"
                ),
                {"q": QUEUE},
            ).scalar_one()
        )
