"""The scheduler's jobs: fetch the sources, deliver due digests. Entry points (they commit).

Each job takes ``now`` from its caller (the service's injectable clock), so tests drive them
on a controlled clock. APScheduler only decides *when* they run; what is due is data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import httpx

from digest.config.settings import Settings
from digest.delivery.base import Transport
from digest.digests import ledger
from digest.digests.claims import db_now, reap_local
from digest.digests.due import DueOptions, survey
from digest.runner import RunReport, run_digests
from digest.store import db

if TYPE_CHECKING:
    from digest.sources.fetcher import FetchReport

log = logging.getLogger(__name__)


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


def work_waiting(settings: Settings, *, now: datetime) -> bool:
    """Whether a deliver run has something to do at ``now``: a due or missed period, or a
    digest ready to (re)send. A few reads; writes nothing."""
    with db.transaction(settings) as session:
        outlook = survey(session, now=now, options=DueOptions.from_settings(settings))
        reap_local(session, now=db_now(session))  # a crashed run here: its claims are void
        return outlook.anything_due or ledger.any_deliverable(session, now=now)


def deliver_job(
    settings: Settings,
    *,
    now: datetime,
    fence: Callable[[], None] | None = None,
    transport: Transport | None = None,
) -> DeliverResult:
    """Build and deliver every due digest at ``now``, missed periods included (the same
    run as ``digest run``).

    Cheap when nothing is due: no run row is written. ``fence`` is called before every
    message (the lease check); if it raises :class:`LeaseLostError` the run stops there and
    its run row is closed as an error. Everything already committed stays valid.
    """
    if not work_waiting(settings, now=now):
        log.debug("deliver at %s: nothing due", now.isoformat(timespec="seconds"))
        return DeliverResult()
    log.info("deliver start at %s", now.isoformat(timespec="seconds"))
    # The fence runs before every message: a leader that lost its lease mid-run stops before
    # the next one (LeaseLostError), hands back what it had not sent and closes its run row
    # as an error; a new leader and an old one never both send.
    report = run_digests(settings, now=now, transport=transport, fence=fence)
    return DeliverResult(report.caught_up, report)


def fetch_job(
    settings: Settings, *, now: datetime, client: httpx.Client | None = None
) -> FetchReport:
    """Fetch every enabled source once (``digest fetch``'s library function)."""
    from digest.sources.fetcher import fetch_all  # noqa: PLC0415 - keeps the service import light

    return fetch_all(settings, now=now, client=client)
