"""``digest run``: build the due digests, deliver them, write feeds. An entry point.

It composes the stages and commits where :mod:`digest.digests.ledger` says a run must:

1. due and missed periods (:mod:`~digest.digests.due`) are ranked at once
   (:mod:`~digest.digests.selection`) and recorded in bulk (:mod:`~digest.digests.ledger`):
   one transaction, committed before any mail goes out;
2. every ready digest is delivered by :mod:`digest.delivery.pipeline` in batches: claimed
   under this run's claimant (:mod:`digest.digests.claims`), rendered on the machine's cores
   from what phase 1 kept in memory, handed to the sender, its outcome recorded as soon as
   the sender reports it.

Static feed files are not written here: the web app serves feeds from the store, and
``digest feeds export`` writes the files of the feeds that changed.

Only entry points (the CLI, the scheduler, the demo) import this module. Its phases are
observable without patching: pass a :class:`RunObserver`.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from digest.config.settings import Settings
from digest.delivery import make_sender
from digest.delivery.base import Transport
from digest.delivery.message import MessageOptions
from digest.delivery.pipeline import Delivery, DeliveryResult, Observer, Unobserved
from digest.delivery.renderpool import RenderPool, RenderSetup, default_processes
from digest.digests import ledger
from digest.digests.claims import ClaimantLease, db_now, reap_local
from digest.digests.due import DueOptions, find_due
from digest.digests.ledger import Recorded
from digest.digests.selection import Selection, select_papers
from digest.ranking import get_ranker
from digest.ranking.base import Ranker
from digest.ranking.memory import release_free_memory
from digest.render.assemble import ViewOptions
from digest.render.batch import papers_of, payloads_from_recorded
from digest.store import db
from digest.store.checkpoint import Checkpoint
from digest.store.runs import recorded_run
from digest.subscribers.library import get_subscriber

log = logging.getLogger(__name__)

POOL_MIN_DIGESTS = 400  # below this, starting renderer processes costs more than it saves


# What a run tells about its steps: build (phase 1, committed), due, select, record,
# deliverable, deliver (phase 2), and per batch: claim, load, render_wait, send (per
# message), finish (per recorded group of outcomes).
RunObserver = Observer
_Unobserved = Unobserved


@contextmanager
def _timed(observer: RunObserver, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        observer.step(name, time.perf_counter() - started)


@dataclass(slots=True)
class DigestOutcome:
    email: str
    period: str
    status: str
    items: int
    top_title: str | None = None
    top_reason: str | None = None
    error: str | None = None
    top_matched: tuple[str, ...] = ()


@dataclass(slots=True)
class RunReport:
    due: int = 0
    sent: int = 0
    empty: int = 0
    failed: int = 0
    caught_up: int = 0  # digests of periods missed while nothing was running
    stopped: str | None = None  # why sending stopped early (relay down, outbox unwritable)
    deferred_jobs: int = 0  # delivery batches handed to queue workers (DIGEST_QUEUE)
    queued: int = 0  # digests in those batches: the workers send them
    digests: list[DigestOutcome] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "sent": self.sent,
            "empty": self.empty,
            "failed": self.failed,
            "caught_up": self.caught_up,
            "stopped": self.stopped,
            "deferred_jobs": self.deferred_jobs,
            "queued": self.queued,
            "digests": [dataclasses.asdict(d) for d in self.digests],
        }


def _queued_outcome(entry: Recorded) -> DigestOutcome:
    top = next(entry.selection.paired(), None)
    explained = entry.explained()
    reason, matched, _ = explained[0] if explained else (None, (), "")
    return DigestOutcome(
        entry.due.subscriber.email,
        entry.due.period.key,
        "queued",
        entry.selection.count,
        top_title=top[0].title if top else None,
        top_reason=reason,
        top_matched=matched,
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Phase 1 allocates millions of small objects (picks, rows, payloads) and no reference
    cycles: the cyclic collector would rescan them again and again. Paused, then restored."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _gc_frozen() -> Iterator[None]:
    """What phase 1 built lives until the run ends: kept out of every collection meanwhile."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def build_due_digests(
    engine: Engine,
    *,
    settings: Settings,
    now: datetime,
    ranker: Ranker,
    subscriber_email: str | None = None,
    observer: RunObserver | None = None,
    defer: bool = False,
    on_selected: Callable[[Sequence[Selection]], None] | None = None,
    checkpoint: Checkpoint | None = None,
) -> tuple[int, list[Recorded], int]:
    """Phase 1: record the digests of every due or missed period, in one transaction.

    With ``defer`` (the procrastinate queue), the same transaction also defers the delivery
    of every ready digest to queue workers. ``on_selected`` is told the selections before
    they are recorded (a run starts its renderers then). With ``checkpoint`` (SQLite), the
    commit leaves the WAL checkpoint to that object's thread, started here once committed:
    wait for it before anything is sent. Returns (how many periods were due, the digests
    this call recorded, how many jobs it deferred).
    """
    observe = observer or _Unobserved()
    with db.transaction(engine) as session:
        if checkpoint is not None:
            checkpoint.hold(session)
        only = get_subscriber(session, subscriber_email) if subscriber_email else None
        with _timed(observe, "due"):
            due = find_due(session, now=now, options=DueOptions.from_settings(settings), only=only)
        with _timed(observe, "select"):
            selections = select_papers(
                session, due, now=now, max_items=settings.max_items, ranker=ranker
            )
        if on_selected is not None:
            on_selected(selections)
        with _timed(observe, "record"):
            recorded = ledger.record_digests(
                session, selections, now=now, keep_empty=settings.send_empty
            )
        jobs = 0
        if defer:
            from digest.queue import defer_batches  # noqa: PLC0415 - procrastinate only when queued

            ids = ledger.deliverable(session, now=now, subscriber_id=only.id if only else None)
            with _timed(observe, "defer"):
                jobs = defer_batches(session, ids, now=now, batch=settings.delivery_batch)
    if checkpoint is not None:
        checkpoint.start()
    # Recording's transients (row tuples, the driver's buffers) are freed: give the C heap's
    # free pages back before phase 2 builds on top of what phase 1 keeps.
    release_free_memory()
    return len(due), recorded, jobs


def _render_setup(settings: Settings, now: datetime) -> RenderSetup:
    return RenderSetup(
        templates_dir=settings.templates_dir,
        site_name=settings.site_name,
        views=ViewOptions.from_settings(settings),
        message=MessageOptions.from_settings(settings),
        sent_at=now,
    )


def render_processes(settings: Settings, digests: int) -> int:
    """Renderer processes for a run of ``digests``: the setting, else one per core when
    the run is large enough to pay for starting them."""
    if settings.render_processes:
        return settings.render_processes
    return default_processes() if digests >= POOL_MIN_DIGESTS else 1


def start_renderers(
    settings: Settings, now: datetime, selections: Sequence[Selection], stack: ExitStack
) -> RenderPool | None:
    """A render pool for the digests of ``selections``, its processes starting now (closed
    with ``stack``); None when the run is too small for more than one renderer."""
    sending = sum(1 for s in selections if s.count or settings.send_empty)
    processes = render_processes(settings, sending)
    if processes <= 1:
        return None
    pool = stack.enter_context(RenderPool(_render_setup(settings, now), processes=processes))
    pool.start()
    return pool


def deliver(
    engine: Engine,
    digest_ids: list[int],
    *,
    settings: Settings,
    now: datetime,
    recorded: list[Recorded] | None = None,
    transport: Transport | None = None,
    fence: Callable[[], None] | None = None,
    observer: RunObserver | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    pool: RenderPool | None = None,
) -> DeliveryResult:
    """Phase 2: deliver ``digest_ids`` under a claimant of this process.

    ``pool``: renderers already started (:func:`start_renderers`), else a pool is made here.
    """
    recorded = recorded or []
    with ExitStack() as stack:
        claimant = stack.enter_context(ClaimantLease(engine, kind="run"))
        if pool is None:
            setup = _render_setup(settings, now)
            processes = render_processes(settings, len(digest_ids))
            pool = stack.enter_context(RenderPool(setup, processes=processes))
        pool.share(papers_of(recorded))
        sender = stack.enter_context(make_sender(settings, transport, engine=engine))
        assert claimant.id is not None
        return Delivery(
            engine,
            claimant=claimant.id,
            sender=sender,
            render=pool,
            now=now,
            bounce_limit=settings.bounce_limit,
            give_up_after=timedelta(days=settings.delivery_give_up_days),
            envelope_from=settings.envelope_from,
            batch_size=settings.delivery_batch,
            memory=payloads_from_recorded(recorded, now=now),
            fence=fence,
            observer=observer,
            on_progress=on_progress,
        ).run(digest_ids)


def _durable_then(on_disk: Checkpoint, fence: Callable[[], None] | None) -> Callable[[], None]:
    """The fence before each message: phase 1 on disk (invariant 1 of
    :mod:`~digest.digests.ledger`), then the caller's own fence."""

    def check() -> None:
        on_disk.wait()
        if fence is not None:
            fence()

    return check


def run_digests(
    settings: Settings,
    *,
    now: datetime,
    subscriber_email: str | None = None,
    transport: Transport | None = None,
    ranker: Ranker | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    observer: RunObserver | None = None,
    fence: Callable[[], None] | None = None,
) -> RunReport:
    """Build and deliver every due digest (or one subscriber's), missed periods included.

    ``fence`` is called before every message is handed over (the scheduler's lease check);
    when it raises, the run stops there, hands back what it had not sent and re-raises.
    """
    engine = db.get_engine(settings)
    ranker = ranker or get_ranker(settings.ranker)
    observe = observer or _Unobserved()
    report = RunReport()
    with db.transaction(engine) as session:
        subscriber_id = get_subscriber(session, subscriber_email).id if subscriber_email else None
    with (
        Checkpoint(engine) as on_disk,  # SQLite: phase 1's WAL checkpoint overlaps phase 2
        recorded_run(engine, kind="deliver", started_at=now, source=subscriber_email) as run,
        ExitStack() as renderers,
    ):
        queued = settings.queue == "procrastinate"
        pool: RenderPool | None = None  # started once the digests are selected

        def on_selected(selections: Sequence[Selection]) -> None:
            nonlocal pool
            if not queued:
                pool = start_renderers(settings, now, selections, renderers)

        if queued:
            from digest.queue import ensure_schema  # noqa: PLC0415 - procrastinate only when queued

            ensure_schema(engine)
        with _timed(observe, "build"), _gc_paused():
            report.due, recorded, report.deferred_jobs = build_due_digests(
                engine,
                settings=settings,
                now=now,
                ranker=ranker,
                subscriber_email=subscriber_email,
                observer=observe,
                defer=queued,
                on_selected=on_selected,
                checkpoint=on_disk,
            )
        report.caught_up = sum(1 for entry in recorded if entry.due.missed)
        for entry in recorded:
            if entry.status == "empty":
                email = entry.due.subscriber.email
                report.digests.append(DigestOutcome(email, entry.due.period.key, "empty", 0))
        report.empty = len(report.digests)
        if queued:  # recorded and handed to the workers: say what they will send
            handed = [_queued_outcome(entry) for entry in recorded if entry.status != "empty"]
            report.digests += handed
            report.queued = len(handed)
        with _timed(observe, "deliverable"), db.transaction(engine) as session:
            # Claims of dead processes on this host are void now, not after their TTL.
            reap_local(session, now=db_now(session))
            to_send = (
                [] if queued else ledger.deliverable(session, now=now, subscriber_id=subscriber_id)
            )
        if to_send:
            with _timed(observe, "deliver"), _gc_frozen():
                result = deliver(
                    engine,
                    to_send,
                    settings=settings,
                    now=now,
                    recorded=recorded,
                    transport=transport,
                    fence=_durable_then(on_disk, fence),
                    observer=observe,
                    on_progress=on_progress,
                    pool=pool,
                )
            report.stopped = result.stopped
            for done in result.delivered:
                report.digests.append(
                    DigestOutcome(
                        done.email,
                        done.period,
                        done.status,
                        done.items,
                        done.top_title,
                        done.top_reason,
                        done.error,
                        done.top_matched,
                    )
                )
            report.sent, report.failed = result.sent, result.failed
        run.new = report.sent
        run.details = {k: v for k, v in report.as_dict().items() if k != "digests"}
        if report.stopped:
            run.fail(f"sending stopped: {report.stopped}")
        elif report.failed:
            run.fail(f"{report.failed} digest(s) failed")
    return report
