"""What ``digest status`` reports, as plain data (the CLI prints it or dumps it as JSON).

- ``sources``: per source its last success, last error and how many papers it listed. The
  fetcher's ``source_state`` rows give success and error times; sources without one (files
  imported by hand) fall back to their sightings (last listed) and their runs (last error).
- ``next_deliveries``: the next scheduled digests with their UTC send times.
- ``scheduler``: who holds the scheduler lease, until when.
- ``runs``, ``failed_deliveries`` and counts of papers, subscribers, digests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from digest.config.settings import Settings
from digest.digests.due import DueOptions, next_deliveries
from digest.scheduler.lease import read_lease
from digest.store.models import Digest, Paper, Run, Sighting, SourceState, Subscriber

_FAILED_RUNS = 200  # failed runs scanned for sources without a state row


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def source_status(session: Session) -> dict[str, dict[str, Any]]:
    """``{name: {last_success, last_error, last_error_at, papers}}`` for every known source."""
    info: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return info.setdefault(
            name, {"last_success": None, "last_error": None, "last_error_at": None, "papers": 0}
        )

    sightings = select(
        col(Sighting.source), func.count(), func.max(col(Sighting.last_seen_at))
    ).group_by(col(Sighting.source))
    for name, papers, last_seen in session.execute(sightings).all():
        row = entry(str(name))
        row["papers"], row["last_success"] = int(papers), _iso(last_seen)
    stated: set[str] = set()
    for state in session.execute(select(SourceState)).scalars():
        stated.add(state.name)
        row = entry(state.name)
        if state.last_success_at is not None:
            row["last_success"] = _iso(state.last_success_at)
        row["last_error"], row["last_error_at"] = state.last_error, _iso(state.last_error_at)
    failures = (
        select(col(Run.source), col(Run.error), col(Run.started_at))
        .where(col(Run.status) == "error", col(Run.kind).in_(["fetch", "import"]))
        .order_by(col(Run.started_at).desc())
        .limit(_FAILED_RUNS)
    )
    for name, error, when in reversed(session.execute(failures).all()):  # newest wins
        if name is not None and name not in stated:  # a state row keeps its own last error
            row = entry(str(name))
            row["last_error"], row["last_error_at"] = error, _iso(when)
    return dict(sorted(info.items()))


def collect_status(
    session: Session, *, now: datetime, settings: Settings, recent: int = 10
) -> dict[str, Any]:
    """Everything ``digest status`` shows."""

    def counts(column: Any) -> dict[str, int]:
        rows = session.execute(select(column, func.count()).group_by(column)).all()
        return {str(key): int(value) for key, value in rows}

    runs = session.execute(select(Run).order_by(col(Run.id).desc()).limit(recent)).scalars()
    failed = session.execute(
        select(Digest, col(Subscriber.email))
        .join(Subscriber, col(Digest.subscriber_id) == col(Subscriber.id))
        .where(col(Digest.status) == "failed")
        .order_by(col(Digest.id).desc())
        .limit(recent)
    ).all()
    lease = read_lease(session)
    return {
        "now": now.isoformat(),
        "papers": session.execute(select(func.count()).select_from(Paper)).scalar_one(),
        "subscribers": counts(col(Subscriber.status)),
        "digests": counts(col(Digest.status)),
        "sources": source_status(session),
        "next_deliveries": next_deliveries(
            session, now=now, options=DueOptions.from_settings(settings), limit=recent
        ),
        "scheduler": None
        if lease is None
        else {
            "holder": lease.holder,
            "active": lease.expires_at > now,
            "acquired_at": lease.acquired_at.isoformat(),
            "heartbeat_at": lease.heartbeat_at.isoformat(),
            "expires_at": lease.expires_at.isoformat(),
        },
        "runs": [
            {
                "id": r.id,
                "kind": r.kind,
                "source": r.source,
                "status": r.status,
                "started_at": r.started_at.isoformat(),
                "finished_at": _iso(r.finished_at),
                "new": r.new_count,
                "seen": r.seen_count,
                "error": r.error,
                "details": r.details,  # e.g. an import's format, records and capped fields
            }
            for r in runs
        ],
        "failed_deliveries": [
            {
                "email": email,
                "period": d.period_key,
                "error": d.last_error,
                "attempts": d.attempts,
                "next_attempt_at": _iso(d.next_attempt_at),
            }
            for d, email in failed
        ],
    }
