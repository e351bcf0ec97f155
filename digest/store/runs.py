"""Run records: the one way an import, a fetch or a delivery run is written down.

:func:`recorded_run` commits a ``running`` row before the work starts (so a crash leaves a
trace), hands the work a :class:`RunLog` to fill in, and closes the row in its own
transaction however the block ends: ``ok``, ``error`` with the one-line error the work
reported, or ``error`` with the exception that escaped it (which is re-raised). A run row
is never left ``running`` by an error exit; only a killed process leaves one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from digest.errors import DigestError
from digest.store import db
from digest.store.models import Run

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RunLog:
    """What the work reports about its run; written when the run closes."""

    id: int
    new: int = 0
    seen: int = 0
    error: str | None = None  # set: the run ends as ``error`` with this one-line reason
    details: dict[str, Any] = field(default_factory=dict)  # merged into the row's details

    def fail(self, error: str) -> None:
        self.error = error


def _close(engine: Engine, log: RunLog, finished_at: datetime) -> None:
    with db.transaction(engine) as session:
        run = session.get(Run, log.id)
        if run is None:  # removed meanwhile (a test wiping the table): nothing to close
            return
        run.status = "error" if log.error else "ok"
        run.error, run.finished_at = log.error, finished_at
        run.new_count, run.seen_count = log.new, log.seen
        run.details = {**run.details, **log.details}


@contextmanager
def recorded_run(
    engine: Engine,
    *,
    kind: str,
    started_at: datetime,
    source: str | None = None,
    details: dict[str, Any] | None = None,
) -> Iterator[RunLog]:
    """Record one run of ``kind`` (import, fetch, deliver) around the block."""
    with db.transaction(engine) as session:
        run = Run(
            kind=kind,
            source=source,
            status="running",
            started_at=started_at,
            details=dict(details or {}),
        )
        session.add(run)
        session.flush()
        assert run.id is not None
        log = RunLog(run.id)
    began = time.monotonic()

    def finished() -> datetime:
        return started_at + timedelta(seconds=time.monotonic() - began)

    try:
        yield log
    except BaseException as exc:
        if log.error is None:
            expected = isinstance(exc, DigestError) and str(exc)
            reason = str(exc) if expected else f"{type(exc).__name__}: {exc}".rstrip(": ")
            log.fail(" ".join(reason.split()))
        try:
            _close(engine, log, finished())
        except Exception:  # the store itself failing: keep the original error
            logger.exception("could not close run %d", log.id)
        raise
    _close(engine, log, finished())
