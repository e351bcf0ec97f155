"""``digest fetch``: every source into the store, each one a recorded run. An entry point.

Per source: a ``run`` row is written first (status ``running``, so a crash leaves a trace),
then each batch the source yields is stored in its own transaction together with the
source's cursor, then the run is closed with its counts or its one-line error. A failing
source never stops the others, and a failing batch keeps the batches before it.

The network is injected (``client``); so is ``sleep`` (retry waits), so tests can honour
Retry-After without waiting for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from digest.config.settings import Settings
from digest.config.sources import SourceSpec
from digest.errors import ConfigError, DigestError
from digest.parsers.common import one_line
from digest.sources.arxiv import Arxiv
from digest.sources.base import Batch, FetchContext, Source
from digest.sources.config import (
    SourceEntry,
    list_sources,
    load_cursor,
    record_outcome,
    save_cursor,
    select_sources,
)
from digest.sources.feed import Feed
from digest.sources.file import FileSource
from digest.sources.hf_daily import HfDaily
from digest.sources.http import Http, Sleep, Spacing, make_client
from digest.store import db
from digest.store.models import Paper
from digest.store.papers import upsert_records
from digest.store.records import PaperRecord
from digest.store.runs import recorded_run

log = logging.getLogger(__name__)

SOURCE_TYPES: dict[str, Callable[[SourceSpec], Source]] = {
    "hf_daily": HfDaily,
    "arxiv": Arxiv,
    "feed": Feed,
    "file": FileSource,
}
_KEEP_LABELS = 60  # batch labels kept on a run's details (a long lookback has many days)


@dataclass(slots=True)
class SourceReport:
    """What one source's fetch did."""

    name: str
    kind: str
    status: str = "ok"  # ok error
    new: int = 0
    seen: int = 0
    updated: int = 0
    skipped: int = 0  # refresh-only items about papers we never stored
    batches: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None  # config: fix the source definition; fetch: try later
    run_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "new": self.new,
            "seen": self.seen,
            "updated": self.updated,
            "skipped": self.skipped,
            "batches": self.batches,
            "error": self.error,
            "error_kind": self.error_kind,
            "run_id": self.run_id,
        }


@dataclass(slots=True)
class FetchReport:
    """Every source's outcome, in fetch order."""

    sources: list[SourceReport] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)  # defined, skipped: not enabled

    @property
    def new(self) -> int:
        return sum(source.new for source in self.sources)

    @property
    def seen(self) -> int:
        return sum(source.seen for source in self.sources)

    @property
    def failed(self) -> list[SourceReport]:
        return [source for source in self.sources if source.status != "ok"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "seen": self.seen,
            "failed": len(self.failed),
            "sources": {source.name: source.as_dict() for source in self.sources},
            "disabled": self.disabled,
        }


def _known_keys(session: Session, keys: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        known.update(
            session.execute(select(col(Paper.key)).where(col(Paper.key).in_(chunk))).scalars()
        )
    return known


def store_batch(
    session: Session, batch: Batch, *, source: str, now: datetime, report: SourceReport
) -> None:
    """Store one batch's papers (never deleting anything) and add to ``report``'s counts."""
    stored: list[PaperRecord] = list(batch.records)
    if batch.refresh_only:
        known = _known_keys(session, list({record.key for record in batch.refresh_only}))
        refresh = [record for record in batch.refresh_only if record.key in known]
        report.skipped += len(batch.refresh_only) - len(refresh)
        stored.extend(refresh)
    if stored:
        outcome = upsert_records(session, stored, source=source, now=now)
        report.new += outcome.new
        report.seen += outcome.seen
        report.updated += outcome.updated


def _fetch_one(engine: Engine, entry: SourceEntry, ctx: FetchContext) -> SourceReport:
    spec = entry.spec
    report = SourceReport(name=spec.name, kind=spec.kind)
    details = {"kind": spec.kind, "url": spec.resolved_url}
    log.info("fetching %s (%s): %s", spec.name, spec.kind, spec.resolved_url)
    with recorded_run(
        engine, kind="fetch", source=spec.name, started_at=ctx.now, details=details
    ) as run:
        report.run_id = run.id
        with db.transaction(engine) as session:
            cursor = load_cursor(session, spec.name)
        try:
            for batch in SOURCE_TYPES[spec.kind](spec).fetch(ctx, cursor):
                with db.transaction(engine) as session:
                    store_batch(session, batch, source=spec.name, now=ctx.now, report=report)
                    if batch.cursor is not None:
                        save_cursor(session, spec.name, batch.cursor, now=ctx.now)
                report.batches.append(batch.label)
                report.notes.update(batch.notes)
        except DigestError as exc:
            report.status, report.error = "error", one_line(str(exc))
            report.error_kind = "config" if isinstance(exc, ConfigError) else "fetch"
        except Exception as exc:
            # A bug in one source must not stop the others; it is logged with its traceback
            # and recorded on the run, and the fetch as a whole reports failure.
            log.exception("source %s failed unexpectedly", spec.name)
            report.status, report.error = (
                "error",
                one_line(f"internal error: {type(exc).__name__}: {exc}"),
            )
            report.error_kind = "internal"
        run.new, run.seen = report.new, report.seen
        run.details = {
            "updated": report.updated,
            "skipped": report.skipped,
            "batches": report.batches[-_KEEP_LABELS:],
            "error_kind": report.error_kind,
            **report.notes,
        }
        if report.error:
            run.fail(report.error)
    with db.transaction(engine) as session:
        record_outcome(session, report.name, error=report.error, now=ctx.now)
    log.info(
        "fetched %s: %s, %d new, %d seen%s",
        spec.name,
        report.status,
        report.new,
        report.seen,
        f" ({report.error})" if report.error else "",
    )
    return report


def make_context(
    settings: Settings,
    client: httpx.Client,
    *,
    now: datetime,
    since: date | None = None,
    probe: bool = False,
    sleep: Sleep = time.sleep,
) -> FetchContext:
    """The context every source of one fetch shares (one arXiv spacing for all of them)."""
    return FetchContext(
        http=Http.from_settings(client, settings, sleep=sleep),
        settings=settings,
        now=now,
        arxiv_spacing=Spacing(settings.arxiv_delay),
        since=since,
        probe=probe,
    )


def fetch_all(
    settings: Settings,
    *,
    now: datetime,
    only: Collection[str] | None = None,
    since: date | None = None,
    client: httpx.Client | None = None,
    sleep: Sleep = time.sleep,
) -> FetchReport:
    """Fetch every enabled source (or the ones named in ``only``) into the store.

    ``since`` overrides the start date of dated sources (hf_daily). Raises ConfigError before
    fetching anything when a name is unknown or the definitions are invalid; a source's own
    failure is reported on its :class:`SourceReport` and its run, never raised.
    """
    if isinstance(only, str):
        only = [only]
    today = now.astimezone(UTC).date()
    if since is not None and since > today:
        raise ConfigError(f"--since {since} is after today ({today})")
    engine = db.get_engine(settings)
    with db.transaction(engine) as session:
        defined = list_sources(session, settings)
    entries = select_sources(defined, only)
    report = FetchReport()
    if not only:
        report.disabled = [entry.spec.name for entry in defined if not entry.spec.enabled]
    owned = client is None
    http_client = make_client(settings) if client is None else client
    try:
        ctx = make_context(settings, http_client, now=now, since=since, sleep=sleep)
        for entry in entries:
            report.sources.append(_fetch_one(engine, entry, ctx))
    finally:
        if owned:
            http_client.close()
    return report
