"""The ``digest run`` job: build due digests, deliver them, write feeds. An entry point.

Commits happen here and only here, at the points that make the job crash-safe:

1. digest rows and their ledger items are committed before any mail goes out;
2. each digest is marked ``sending`` (committed) before its message is handed over;
3. it is marked ``sent`` / ``failed`` (committed) right after.

A crash between 2 and 3 leaves a ``sending`` digest; the next run re-sends it with the same
Message-ID (derived from the digest key), so the receiving side can recognise it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from digest import db
from digest.delivery import make_transport
from digest.delivery.base import Transport
from digest.errors import PermanentDeliveryError, TransientDeliveryError
from digest.mail import add_dkim_signature, build_message
from digest.models import Digest, Run, Subscriber
from digest.pipeline import find_due, record_digest, select_papers
from digest.presenter import digest_view, feed_self_url, feed_view, selection_view
from digest.ranking import get_ranker
from digest.ranking.base import Ranker
from digest.render.email import EmailRenderer, cached_renderer
from digest.render.feeds import render_atom, render_json, render_rss
from digest.settings import Settings
from digest.subscribers import get_subscriber
from digest.views import DigestView

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # transient failures before a digest is given up
STALE_SENDING = timedelta(minutes=15)  # a "sending" digest older than this crashed mid-send
FEED_FORMATS: dict[str, Callable[[Any], bytes]] = {
    "atom": render_atom,
    "rss": render_rss,
    "json": render_json,
}


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
    digests: list[DigestOutcome] = field(default_factory=list)
    feeds_dir: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "sent": self.sent,
            "empty": self.empty,
            "failed": self.failed,
            "digests": [dataclasses.asdict(d) for d in self.digests],
        }


def _backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(5 * 2 ** max(attempts - 1, 0), 6 * 60))


def build_due_digests(
    engine: Engine,
    *,
    settings: Settings,
    now: datetime,
    ranker: Ranker,
    subscriber_email: str | None = None,
) -> tuple[int, list[DigestOutcome]]:
    """Phase 1: record the digests of every due subscriber; returns (due, empty outcomes)."""
    empties: list[DigestOutcome] = []
    with db.transaction(engine) as session:
        only = get_subscriber(session, subscriber_email) if subscriber_email else None
        due = find_due(session, now=now, settings=settings, only=only)
        selections = select_papers(session, due, now=now, settings=settings, ranker=ranker)
        for selection in selections:
            digest = record_digest(session, selection, now=now, keep_empty=settings.send_empty)
            if digest is not None and digest.status == "empty":
                empties.append(
                    DigestOutcome(selection.due.subscriber.email, digest.period_key, "empty", 0)
                )
    return len(due), empties


def _ready(now: datetime) -> ColumnElement[bool]:
    """Digests a run may (re)send: pending, failed and due for a retry, or stuck sending.

    While a digest is ``sending``, ``next_attempt_at`` is when its claim goes stale: a
    process that died mid-send leaves it there, and a later run takes it over.
    """
    retry_due = col(Digest.next_attempt_at) <= now
    return or_(
        col(Digest.status) == "pending",
        (col(Digest.status) == "failed") & retry_due,
        (col(Digest.status) == "sending")
        & or_(
            retry_due,
            col(Digest.next_attempt_at).is_(None) & (col(Digest.created_at) <= now - STALE_SENDING),
        ),
    )


def _claim(session: Session, digest_id: int, *, now: datetime) -> bool:
    """Atomically mark one ready digest ``sending``; False if another run holds it."""
    result = session.execute(
        update(Digest)
        .where(col(Digest.id) == digest_id, _ready(now))
        .values(
            status="sending",
            attempts=col(Digest.attempts) + 1,
            next_attempt_at=now + STALE_SENDING,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # CursorResult


def _deliverable(session: Session, *, now: datetime, subscriber_id: int | None) -> list[int]:
    statement = select(col(Digest.id)).where(_ready(now))
    if subscriber_id is not None:
        statement = statement.where(col(Digest.subscriber_id) == subscriber_id)
    return list(session.execute(statement.order_by(col(Digest.id))).scalars())


def deliver_one(
    engine: Engine,
    digest_id: int,
    *,
    settings: Settings,
    now: datetime,
    renderer: EmailRenderer,
    transport: Transport,
) -> DigestOutcome | None:
    """Phases 2 and 3 for one digest; None when another run claimed it first."""
    with db.transaction(engine) as session:
        # The claim is a conditional UPDATE, so two runs (two hosts, or a manual run
        # beside the scheduler) can never both send one digest.
        if not _claim(session, digest_id, now=now):
            return None
        digest = session.get(Digest, digest_id)
        assert digest is not None
        session.refresh(digest)
        subscriber = session.get(Subscriber, digest.subscriber_id)
        assert subscriber is not None
        if subscriber.status != "active" or subscriber.bounce_count >= settings.bounce_limit:
            digest.status, digest.next_attempt_at = "failed", None
            digest.last_error = f"not sent: subscriber is {subscriber.status}"
            return DigestOutcome(
                subscriber.email, digest.period_key, "failed", 0, error=digest.last_error
            )
        view = digest_view(session, digest, subscriber, settings=settings)
        rendered = renderer.render(view)
        message = add_dkim_signature(
            build_message(view, rendered, settings=settings, sent_at=now), settings
        )
        digest.subject, digest.message_id = rendered.subject, str(message["Message-ID"])
    outcome = DigestOutcome(
        view.subscriber_email,
        digest.period_key,
        "sent",
        len(view.items),
        view.items[0].title if view.items else None,
        view.items[0].reason if view.items else None,
        top_matched=view.items[0].matched if view.items else (),
    )
    try:
        transport.send(message, envelope_from=settings.envelope_from, recipient=subscriber.email)
    except TransientDeliveryError as exc:
        outcome.status, outcome.error = "failed", str(exc)
        retry_at = now + _backoff(digest.attempts) if digest.attempts < MAX_ATTEMPTS else None
        _finish(engine, digest_id, "failed", error=str(exc), retry_at=retry_at)
    except PermanentDeliveryError as exc:
        outcome.status, outcome.error = "failed", str(exc)
        _finish(engine, digest_id, "failed", error=str(exc), retry_at=None, bounce=True)
    else:
        _finish(engine, digest_id, "sent", sent_at=now)
    return outcome


def _finish(
    engine: Engine,
    digest_id: int,
    status: str,
    *,
    error: str | None = None,
    retry_at: datetime | None = None,
    sent_at: datetime | None = None,
    bounce: bool = False,
) -> None:
    with db.transaction(engine) as session:
        digest = session.get(Digest, digest_id)
        assert digest is not None
        digest.status, digest.last_error = status, error
        digest.next_attempt_at, digest.sent_at = retry_at, sent_at
        if bounce:
            subscriber = session.get(Subscriber, digest.subscriber_id)
            assert subscriber is not None
            subscriber.bounce_count += 1
            subscriber.last_bounce = error
            log.warning("hard bounce %d for subscriber %d", subscriber.bounce_count, subscriber.id)


def write_feeds(session: Session, subscriber: Subscriber, *, settings: Settings) -> Path:
    """Write the subscriber's Atom, RSS and JSON feeds under ``<data_dir>/feeds``."""
    directory = settings.data_dir / "feeds"
    directory.mkdir(parents=True, exist_ok=True)
    # One query for the three formats: they differ only in their own URL.
    view = feed_view(session, subscriber, settings=settings, fmt="atom")
    for fmt, render in FEED_FORMATS.items():
        data = render(dataclasses.replace(view, self_url=feed_self_url(settings, subscriber, fmt)))
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
) -> RunReport:
    """Build and deliver every due digest (or one subscriber's), then write their feeds."""
    engine = db.get_engine(settings)
    ranker = ranker or get_ranker(settings.ranker)
    report = RunReport()
    with db.transaction(engine) as session:
        run = Run(kind="deliver", started_at=now, source=subscriber_email)
        session.add(run)
        session.flush()
        run_id = run.id
        subscriber_id = get_subscriber(session, subscriber_email).id if subscriber_email else None
    report.due, empties = build_due_digests(
        engine, settings=settings, now=now, ranker=ranker, subscriber_email=subscriber_email
    )
    report.empty = len(empties)
    report.digests.extend(empties)
    with db.transaction(engine) as session:
        to_send = _deliverable(session, now=now, subscriber_id=subscriber_id)
    if to_send:
        renderer = cached_renderer(settings.templates_dir, settings.site_name)
        with transport or make_transport(settings) as open_transport:
            for done, digest_id in enumerate(to_send, start=1):
                outcome = deliver_one(
                    engine,
                    digest_id,
                    settings=settings,
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
            report.feeds_dir = write_feeds(
                session, get_subscriber(session, email), settings=settings
            )
        finished = session.get(Run, run_id)
        assert finished is not None
        finished.status, finished.finished_at = ("error" if report.failed else "ok"), now
        finished.new_count = report.sent
        finished.details = {k: v for k, v in report.as_dict().items() if k != "digests"}
    return report


def preview_digest(
    settings: Settings, email: str, *, now: datetime, ranker: Ranker | None = None
) -> DigestView:
    """The digest ``email`` would get now, without recording or sending anything."""
    engine = db.get_engine(settings)
    with Session(engine) as session:
        subscriber = get_subscriber(session, email)
        due = find_due(session, now=now, settings=settings, only=subscriber, ignore_existing=True)
        selections = select_papers(
            session, due, now=now, settings=settings, ranker=ranker or get_ranker(settings.ranker)
        )
        view = selection_view(session, selections[0], now=now, settings=settings)
        session.rollback()
    return view
