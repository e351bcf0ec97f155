"""What ``digest status`` reports: counts and recent runs, as plain data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from digest.models import Digest, Paper, Run, Subscriber


def collect_status(session: Session, *, recent: int = 10) -> dict[str, Any]:
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
    return {
        "papers": session.execute(select(func.count()).select_from(Paper)).scalar_one(),
        "subscribers": counts(col(Subscriber.status)),
        "digests": counts(col(Digest.status)),
        "runs": [
            {
                "id": r.id,
                "kind": r.kind,
                "source": r.source,
                "status": r.status,
                "started_at": r.started_at.isoformat(),
                "new": r.new_count,
                "seen": r.seen_count,
                "error": r.error,
            }
            for r in runs
        ],
        "failed_deliveries": [
            {"email": email, "period": d.period_key, "error": d.last_error, "attempts": d.attempts}
            for d, email in failed
        ],
    }
