"""The scheduler's jobs: fetch the sources, deliver due digests. Entry points (they commit).

Each job takes ``now`` from its caller (the service's injectable clock), so tests drive them
on a controlled clock. APScheduler only decides *when* they run; what is due is data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from types import TracebackType
from typing import TYPE_CHECKING, Self

import httpx
from sqlalchemy import update
from sqlmodel import col

from digest import db
from digest.delivery import make_transport
from digest.delivery.base import Transport
from digest.models import Run
from digest.pipeline import record_digest, select_papers
from digest.ranking import get_ranker
from digest.runner import RunReport, run_digests
from digest.scheduler.lease import LeaseLostError
from digest.scheduler.plan import find_missed, survey, work_waiting
from digest.settings import Settings

if TYPE_CHECKING:
    from digest.sources.fetcher import FetchReport

log = logging.getLogger(__name__)


class FencedTransport:
    """A transport that asks ``fence`` before every message (it raises to refuse).

    The deliver job passes the lease check: a leader that lost its lease mid-run stops
    before the next message, so a new leader and an old one never both send. The digest it
    had marked ``sending`` is re-sent later by the new leader, with the same Message-ID.
    """

    def __init__(self, inner: Transport, fence: Callable[[], None]) -> None:
        self.inner = inner
        self.fence = fence
        self.name = inner.name

    def __enter__(self) -> Self:
        self.inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.inner.__exit__(exc_type, exc, tb)

    def send(self, message: EmailMessage, *, envelope_from: str, recipient: str) -> None:
        self.fence()
        self.inner.send(message, envelope_from=envelope_from, recipient=recipient)


@dataclass(slots=True)
class DeliverResult:
    """What one deliver job did. ``idle``: nothing was due, no run was recorded."""

    caught_up: int = 0
    report: RunReport | None = None

    @property
    def idle(self) -> bool:
        return self.report is None

    def summary(self) -> str:
        r = self.report or RunReport()
        return (
            f"caught_up={self.caught_up} due={r.due} sent={r.sent} empty={r.empty} "
            f"failed={r.failed}"
        )


def record_missed(settings: Settings, *, now: datetime) -> tuple[int, bool]:
    """Record digests for periods missed during downtime; (how many, is there work now).

    One transaction, committed before anything is sent (like ``run_digests``'s phase 1).
    """
    engine = db.get_engine(settings)
    with db.transaction(engine) as session:
        outlook = survey(session, now=now, settings=settings)
        missed = find_missed(session, outlook, settings=settings)
        recorded = 0
        if missed:
            selections = select_papers(
                session, missed, now=now, settings=settings, ranker=get_ranker(settings.ranker)
            )
            for selection in selections:
                digest = record_digest(session, selection, now=now, keep_empty=settings.send_empty)
                if digest is not None:
                    recorded += 1
                    log.info(
                        "catch-up: digest %s for %s (missed send time %s)",
                        digest.period_key,
                        selection.due.subscriber.email,
                        selection.due.period.send_at.isoformat(),
                    )
        busy = recorded > 0 or work_waiting(session, outlook)
    return recorded, busy


def deliver_job(
    settings: Settings,
    *,
    now: datetime,
    fence: Callable[[], None] | None = None,
    transport: Transport | None = None,
) -> DeliverResult:
    """Catch up missed periods, then build and deliver every due digest at ``now``.

    Cheap when nothing is due: no run row is written. ``fence`` is called before every
    message (the lease check); if it raises :class:`LeaseLostError` the run stops there and
    its run row is closed as an error. Everything already committed stays valid.
    """
    caught_up, busy = record_missed(settings, now=now)
    if not busy:
        log.debug("deliver at %s: nothing due", now.isoformat(timespec="seconds"))
        return DeliverResult(caught_up)
    log.info(
        "deliver start at %s: %d missed period(s) recorded",
        now.isoformat(timespec="seconds"),
        caught_up,
    )
    chosen = transport or make_transport(settings)
    if fence is not None:
        chosen = FencedTransport(chosen, fence)
    try:
        report = run_digests(settings, now=now, transport=chosen)
    except LeaseLostError as exc:
        _close_interrupted_run(settings, now=now, error=str(exc))
        raise
    return DeliverResult(caught_up, report)


def _close_interrupted_run(settings: Settings, *, now: datetime, error: str) -> None:
    # run_digests opened its run row at ``now``; mark it so status does not show it running.
    with db.transaction(settings) as session:
        session.execute(
            update(Run)
            .where(
                col(Run.kind) == "deliver",
                col(Run.status) == "running",
                col(Run.started_at) == now,
            )
            .values(status="error", finished_at=now, error=error)
        )


def fetch_job(
    settings: Settings, *, now: datetime, client: httpx.Client | None = None
) -> FetchReport:
    """Fetch every enabled source once (``digest fetch``'s library function)."""
    from digest.sources.fetcher import fetch_all  # noqa: PLC0415 - keeps the service import light

    return fetch_all(settings, now=now, client=client)
