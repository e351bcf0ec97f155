"""``digest run``: build the due digests, deliver them, write feeds. An entry point.

It composes the stages and commits where :mod:`digest.digests.ledger` says a run must:

1. due and missed periods (:mod:`~digest.digests.due`) are ranked at once
   (:mod:`~digest.digests.selection`) and recorded (:mod:`~digest.digests.ledger`): one
   transaction, committed before any mail goes out;
2. each ready digest is claimed (committed), its view assembled
   (:mod:`~digest.render.assemble`), rendered (:mod:`~digest.render.email`), built into a
   message (:mod:`~digest.delivery.message`) and handed to the transport;
3. its outcome is recorded (committed) as soon as the transport returns;
4. recipients' static feed files are rewritten.

Only entry points (the CLI, the scheduler, the demo) import this module. Its phases are
observable without patching: pass a :class:`RunObserver`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from sqlmodel import Session

from digest.config.settings import Settings
from digest.delivery import make_transport
from digest.delivery.base import Transport
from digest.delivery.message import MessageOptions, add_dkim_signature, build_message
from digest.digests import ledger
from digest.digests.due import DueOptions, find_due
from digest.digests.selection import select_papers
from digest.errors import PermanentDeliveryError, TransientDeliveryError
from digest.ranking import get_ranker
from digest.ranking.base import Ranker
from digest.render.assemble import ViewOptions, digest_view, feed_self_url, feed_view
from digest.render.email import EmailRenderer, cached_renderer
from digest.render.feeds import FEED_FORMATS
from digest.store import db
from digest.store.models import Digest, Subscriber
from digest.store.runs import recorded_run
from digest.subscribers.library import get_subscriber

log = logging.getLogger(__name__)


class RunObserver(Protocol):
    """Told how long each step of a run took (benchmarks, metrics)."""

    def step(self, name: str, seconds: float) -> None:
        """``name`` is one of: build (phase 1, committed), due, select, record, deliverable,
        deliver (per digest: claim, view, render, message, dkim, send, finish), feeds (per
        recipient: feed_view and each feed format)."""


class _Unobserved:
    def step(self, name: str, seconds: float) -> None:
        pass


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
    digests: list[DigestOutcome] = field(default_factory=list)
    feeds_dir: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "sent": self.sent,
            "empty": self.empty,
            "failed": self.failed,
            "caught_up": self.caught_up,
            "digests": [dataclasses.asdict(d) for d in self.digests],
        }


@dataclass(frozen=True, slots=True)
class _Plan:
    """What one run needs from the settings, built once at its start."""

    settings: Settings
    due: DueOptions
    views: ViewOptions
    message: MessageOptions
    observer: RunObserver

    @classmethod
    def of(cls, settings: Settings, observer: RunObserver | None) -> _Plan:
        return cls(
            settings,
            DueOptions.from_settings(settings),
            ViewOptions.from_settings(settings),
            MessageOptions.from_settings(settings),
            observer or _Unobserved(),
        )


def build_due_digests(
    engine: Engine,
    *,
    settings: Settings,
    now: datetime,
    ranker: Ranker,
    subscriber_email: str | None = None,
    observer: RunObserver | None = None,
) -> tuple[int, list[DigestOutcome], int]:
    """Phase 1: record the digests of every due or missed period (one transaction).

    Returns (due, the outcomes of empty digests, how many were missed periods caught up).
    """
    plan = _Plan.of(settings, observer)
    empties: list[DigestOutcome] = []
    with db.transaction(engine) as session:
        only = get_subscriber(session, subscriber_email) if subscriber_email else None
        with _timed(plan.observer, "due"):
            due = find_due(session, now=now, options=plan.due, only=only)
        with _timed(plan.observer, "select"):
            selections = select_papers(
                session, due, now=now, max_items=settings.max_items, ranker=ranker
            )
        with _timed(plan.observer, "record"):
            recorded = ledger.record_digests(
                session, selections, now=now, keep_empty=settings.send_empty
            )
    for selection, digest in recorded:
        if digest.status == "empty":
            email = selection.due.subscriber.email
            empties.append(DigestOutcome(email, digest.period_key, "empty", 0))
    caught_up = sum(1 for selection, _ in recorded if selection.due.missed)
    return len(due), empties, caught_up


def _deliver_one(
    engine: Engine,
    digest_id: int,
    *,
    plan: _Plan,
    now: datetime,
    renderer: EmailRenderer,
    transport: Transport,
) -> DigestOutcome | None:
    """Claim, render, hand over and record one digest; None when another run claimed it."""
    settings, observe = plan.settings, plan.observer
    with db.transaction(engine) as session:
        with _timed(observe, "claim"):
            claimed = ledger.claim(session, digest_id, now=now)
        if not claimed:
            return None
        digest = session.get(Digest, digest_id)
        assert digest is not None
        session.refresh(digest)
        subscriber = session.get(Subscriber, digest.subscriber_id)
        assert subscriber is not None
        if subscriber.status != "active" or subscriber.bounce_count >= settings.bounce_limit:
            reason = f"not sent: subscriber is {subscriber.status}"
            ledger.refuse(session, digest, reason)
            return DigestOutcome(subscriber.email, digest.period_key, "failed", 0, error=reason)
        with _timed(observe, "view"):
            view = digest_view(session, digest, subscriber, options=plan.views)
        with _timed(observe, "render"):
            rendered = renderer.render(view)
        with _timed(observe, "message"):
            message = build_message(view, rendered, options=plan.message, sent_at=now)
        with _timed(observe, "dkim"):
            message = add_dkim_signature(message, plan.message)
        ledger.note_message(
            session, digest, subject=rendered.subject, message_id=str(message["Message-ID"])
        )
        attempts, period_key = digest.attempts, digest.period_key
    top = view.items[0] if view.items else None
    outcome = DigestOutcome(
        view.subscriber_email,
        period_key,
        "sent",
        len(view.items),
        top.title if top else None,
        top.reason if top else None,
        top_matched=top.matched if top else (),
    )
    try:
        with _timed(observe, "send"):
            transport.send(
                message, envelope_from=settings.envelope_from, recipient=subscriber.email
            )
    except TransientDeliveryError as exc:
        outcome.status, outcome.error = "failed", str(exc)
        _finish(
            engine,
            observe,
            digest_id,
            "failed",
            error=str(exc),
            retry_at=ledger.retry_at(attempts, now),
        )
    except PermanentDeliveryError as exc:
        outcome.status, outcome.error = "failed", str(exc)
        _finish(engine, observe, digest_id, "failed", error=str(exc), bounce=True)
    else:
        _finish(engine, observe, digest_id, "sent", sent_at=now)
    return outcome


def _finish(engine: Engine, observer: RunObserver, digest_id: int, status: str, **how: Any) -> None:
    with _timed(observer, "finish"), db.transaction(engine) as session:
        ledger.finish(session, digest_id, status, **how)


def write_feeds(
    session: Session,
    subscriber: Subscriber,
    *,
    settings: Settings,
    observer: RunObserver | None = None,
) -> Path:
    """Write the subscriber's Atom, RSS and JSON feeds under ``<data_dir>/feeds``."""
    observe = observer or _Unobserved()
    options = ViewOptions.from_settings(settings)
    directory = settings.data_dir / "feeds"
    directory.mkdir(parents=True, exist_ok=True)
    # One query for the three formats: they differ only in their own URL.
    with _timed(observe, "feed_view"):
        view = feed_view(session, subscriber, options=options, fmt="atom")
    for fmt, render in FEED_FORMATS.items():
        with _timed(observe, fmt):
            data = render(
                dataclasses.replace(view, self_url=feed_self_url(options, subscriber, fmt))
            )
        target = directory / f"{subscriber.token}.{fmt}"
        tmp = target.with_suffix(f".{fmt}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    return directory


def run_digests(
    settings: Settings,
    *,
    now: datetime,
    subscriber_email: str | None = None,
    transport: Transport | None = None,
    ranker: Ranker | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    observer: RunObserver | None = None,
) -> RunReport:
    """Build and deliver every due digest (or one subscriber's), then write their feeds."""
    engine = db.get_engine(settings)
    ranker = ranker or get_ranker(settings.ranker)
    plan = _Plan.of(settings, observer)
    report = RunReport()
    with db.transaction(engine) as session:
        subscriber_id = get_subscriber(session, subscriber_email).id if subscriber_email else None
    with recorded_run(engine, kind="deliver", started_at=now, source=subscriber_email) as run:
        with _timed(plan.observer, "build"):
            report.due, empties, report.caught_up = build_due_digests(
                engine,
                settings=settings,
                now=now,
                ranker=ranker,
                subscriber_email=subscriber_email,
                observer=plan.observer,
            )
        report.empty = len(empties)
        report.digests.extend(empties)
        with _timed(plan.observer, "deliverable"), db.transaction(engine) as session:
            to_send = ledger.deliverable(session, now=now, subscriber_id=subscriber_id)
        if to_send:
            renderer = cached_renderer(settings.templates_dir, settings.site_name)
            with transport or make_transport(settings) as open_transport:
                for done, digest_id in enumerate(to_send, start=1):
                    with _timed(plan.observer, "deliver"):
                        outcome = _deliver_one(
                            engine,
                            digest_id,
                            plan=plan,
                            now=now,
                            renderer=renderer,
                            transport=open_transport,
                        )
                    if outcome is None:
                        continue
                    report.digests.append(outcome)
                    if outcome.status == "sent":
                        report.sent += 1
                    else:
                        report.failed += 1
                    if on_progress:
                        on_progress(done, len(to_send))
        with db.transaction(engine) as session:
            sent_to = {d.email for d in report.digests if d.status == "sent"}
            for email in sorted(sent_to):
                with _timed(plan.observer, "feeds"):
                    report.feeds_dir = write_feeds(
                        session,
                        get_subscriber(session, email),
                        settings=settings,
                        observer=plan.observer,
                    )
        run.new = report.sent
        run.details = {k: v for k, v in report.as_dict().items() if k != "digests"}
        if report.failed:
            run.fail(f"{report.failed} digest(s) failed")
    return report
