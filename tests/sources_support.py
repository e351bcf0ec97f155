"""Helpers shared by the source tests: a fixed clock, fast settings, store read-outs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from digest.config.settings import Settings
from digest.store import db
from digest.store.models import Paper, Run, Sighting, SourceState
from digest.testing.imitations import hf_item

DATA = Path(__file__).parent / "data" / "sources"
NOW = datetime(2024, 10, 25, 12, 0, tzinfo=UTC)  # a Friday
TODAY = NOW.date()


def day(offset: int) -> date:
    """TODAY shifted by ``offset`` days."""
    return TODAY + timedelta(days=offset)


def fast(make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    """Settings whose retries do not wait and whose arXiv spacing is off."""
    values: dict[str, Any] = {
        "http_retry_wait": 0.0,
        "http_timeout": 3.0,
        "arxiv_delay": 0.0,
    }
    values.update(overrides)
    return make_settings(**values)


def hf_papers(prefix: str, count: int, *, upvotes: int = 1) -> list[dict[str, Any]]:
    """``count`` distinct Daily Papers items with ids ``PREFIXNNNN`` (prefix ``2410.1``)."""
    return [
        hf_item(f"{prefix}{n:04d}", f"Paper {prefix} number {n} on learning", upvotes=upvotes)
        for n in range(count)
    ]


def paper_keys(settings: Settings) -> list[str]:
    with db.transaction(settings) as session:
        return list(session.execute(select(col(Paper.key)).order_by(col(Paper.key))).scalars())


def paper(settings: Settings, key: str) -> Paper:
    with db.transaction(settings) as session:
        found = session.execute(select(Paper).where(col(Paper.key) == key)).scalar_one()
        session.expunge(found)
        return found


def count_papers(settings: Settings) -> int:
    with db.transaction(settings) as session:
        return int(session.execute(select(func.count()).select_from(Paper)).scalar_one())


def count_sightings(settings: Settings) -> int:
    with db.transaction(settings) as session:
        return int(session.execute(select(func.count()).select_from(Sighting)).scalar_one())


def fetch_runs(settings: Settings) -> list[Run]:
    with db.transaction(settings) as session:
        rows = list(
            session.execute(
                select(Run).where(col(Run.kind) == "fetch").order_by(col(Run.id))
            ).scalars()
        )
        for row in rows:
            session.expunge(row)
        return rows


def state(settings: Settings, name: str) -> SourceState | None:
    with db.transaction(settings) as session:
        found = session.get(SourceState, name)
        if found is not None:
            session.expunge(found)
        return found
