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
from typing import TYPE_CHECKING

import httpx

from digest.config.settings import Settings
from digest.delivery import make_transport
from digest.delivery.base import BaseTransport, Transport
from digest.digests import ledger
from digest.digests.due import DueOptions, survey
from digest.runner import RunReport, run_digests
from digest.store import db

if TYPE_CHECKING:
    from digest.sources.fetcher import FetchReport

log = logging.getLogger(__name__)


class FencedTransport(BaseTransport):
    """A transport that asks ``fence`` before every message (it raises to refuse).

    The deliver job passes the lease check: a leader that lost its lease mid-run stops
    before the next message, so a new leader and an old one never both send. The digest it
    had marked ``sending`` is re-sent later by the new leader, with the same Message-ID.
    """

    def __init__(self, inner: Transport, fence: Callable[[], None]) -> None:
        self.inner = inner
        self.fence = fence
        self.name = inner.name

    def open(self) -> None:
        self.inner.__enter__()

    def close(self) -> None:
        self.inner.__exit__(None, None, None)

    def send(self, message: EmailMessage, *, envelope_from: str, recipient: str) -> None:
        self.fence()
        self.inner.send(message, envelope_from=envelope_from, recipient=recipient)

    def send_bytes(
        self, data: bytes, *, envelope_from: str, recipient: str, message_id: str
    ) -> None:
        self.fence()
        self.inner.send_bytes(
            data, envelope_from=envelope_from, recipient=recipient, message_id=message_id
        )


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
    chosen = transport or make_transport(settings)
    if fence is not None:
        chosen = FencedTransport(chosen, fence)
    # A LeaseLostError from the fence ends the run there; its run row is closed as an error.
    report = run_digests(settings, now=now, transport=chosen)
    return DeliverResult(report.caught_up, report)


def fetch_job(
    settings: Settings, *, now: datetime, client: httpx.Client | None = None
) -> FetchReport:
    """Fetch every enabled source once (``digest fetch``'s library function)."""
    from digest.sources.fetcher import fetch_all  # noqa: PLC0415 - keeps the service import light

    return fetch_all(settings, now=now, client=client)
