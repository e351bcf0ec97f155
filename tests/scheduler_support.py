"""Helpers for the scheduler tests: a controlled clock, subscribers, papers, counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from digest.config.settings import Settings
from digest.store import db
from digest.store.models import Digest, Subscriber
from digest.store.papers import upsert_records
from digest.store.records import PaperRecord
from digest.subscribers.library import ProfileSpec, SubscriberFields, add_subscriber


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, step: timedelta) -> datetime:
        self.now += step
        return self.now


def subscribe(
    settings: Settings,
    email: str,
    *,
    frequency: str = "daily",
    hour: int = 8,
    timezone: str = "UTC",
    weekday: int = 0,
    at: datetime,
) -> None:
    """An active subscriber interested in transformers, created (and confirmed) at ``at``."""
    with db.transaction(settings) as session:
        add_subscriber(
            session,
            email=email,
            profile=ProfileSpec(keywords=["transformer"]),
            fields=SubscriberFields(
                frequency=frequency, hour=hour, timezone=timezone, weekday=weekday
            ),
            settings=settings,
            now=at,
        )


def add_papers(settings: Settings, *, now: datetime, count: int = 1, tag: str = "") -> None:
    """``count`` new papers about transformers, first seen at ``now``."""
    stamp = now.strftime("%Y%m%dT%H%M") + tag
    records = [
        PaperRecord(
            title=f"Transformer study {stamp} number {i}",
            abstract="We train a transformer model and analyse transformer attention.",
        )
        for i in range(count)
    ]
    with db.transaction(settings) as session:
        upsert_records(session, records, source="test-listing", now=now)


def digests(settings: Settings) -> list[tuple[str, Digest]]:
    """Every digest with its subscriber's email, oldest first."""
    with db.transaction(settings) as session:
        rows = session.execute(
            select(col(Subscriber.email), Digest)
            .join(Subscriber, col(Digest.subscriber_id) == col(Subscriber.id))
            .order_by(col(Digest.id))
        ).all()
    return [(str(email), digest) for email, digest in rows]


def outbox_files(settings: Settings) -> list[Path]:
    directory = settings.resolved_outbox_dir
    return sorted(directory.glob("*.eml")) if directory.exists() else []


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]  # year, month, day, …
