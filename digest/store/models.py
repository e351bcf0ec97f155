"""Store tables (SQLModel over SQLAlchemy 2).

::

    paper ──< sighting            one row per paper (canonical key), one per (paper, source)
    subscriber ──< interest       keyword / exclude / author / category / require
    subscriber ──< digest ──< digest_item
                                  digest: unique (subscriber, period); digest_item: unique
                                  (subscriber, paper) = the ledger: each paper reaches
                                  a subscriber at most once
    subscriber ──< feedback >── paper
                                  the reader's rating of a paper, +1 or -1, one per pair
    run                           every import, fetch and delivery run, with counts and errors

Times are stored as timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from digest.store.types import UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(UTCDateTime(), nullable=nullable, index=index),
    )


class Paper(SQLModel, table=True):
    """A paper, whatever sources listed it. ``key`` is the canonical identity."""

    __tablename__ = "paper"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    arxiv_id: str | None = Field(default=None, max_length=64)
    doi: str | None = Field(default=None, max_length=255)
    title: str
    abstract: str = ""
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    url: str | None = None
    pdf_url: str | None = None
    published_at: datetime | None = _ts()
    listed_at: datetime | None = _ts()  # when a listing first featured it (HF Daily Papers)
    version: int | None = None
    upvotes: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    thumbnail: str | None = None
    ai_summary: str | None = None
    first_source: str = Field(max_length=200)
    first_seen_at: datetime = _ts(nullable=False, index=True)
    updated_at: datetime = _ts(nullable=False)


class Sighting(SQLModel, table=True):
    """That a source listed a paper: first and last time, its id there, the version seen."""

    __tablename__ = "sighting"
    __table_args__ = (UniqueConstraint("paper_id", "source", name="uq_sighting_paper_source"),)

    id: int | None = Field(default=None, primary_key=True)
    paper_id: int = Field(foreign_key="paper.id", ondelete="CASCADE", index=True)
    source: str = Field(max_length=200)
    external_id: str | None = None
    version: int | None = None
    first_seen_at: datetime = _ts(nullable=False)
    last_seen_at: datetime = _ts(nullable=False)
    times_seen: int = 1


class Subscriber(SQLModel, table=True):
    """A person receiving digests. ``token`` authorizes their feed and manage links."""

    __tablename__ = "subscriber"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    name: str | None = Field(default=None, max_length=200)
    status: str = Field(default="active", max_length=20)  # pending active paused unsubscribed
    frequency: str = Field(default="weekly", max_length=10)  # daily weekly off
    weekday: int = 0
    hour: int = 8
    timezone: str = Field(default="UTC", max_length=64)
    max_items: int | None = None
    min_score: float | None = None
    popularity_weight: float = 0.0
    token: str = Field(max_length=64, unique=True)
    origin: str = Field(default="cli", max_length=20)  # cli web sync import
    bounce_count: int = 0
    last_bounce: str | None = None
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    confirmed_at: datetime | None = _ts()
    unsubscribed_at: datetime | None = _ts()


class Interest(SQLModel, table=True):
    """One line of a profile. kind: keyword, exclude, author, category, require."""

    __tablename__ = "interest"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "kind", "text", name="uq_interest_subscriber_kind_text"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE", index=True)
    kind: str = Field(max_length=20)
    text: str = Field(max_length=500)
    weight: float = 1.0
    position: int = 0


class Claimant(SQLModel, table=True):
    """A process that claims digests to send them: a ``digest run`` or a queue worker.

    It renews ``heartbeat_at`` (database clock) while alive and sets ``ended_at`` when done.
    A claimant whose heartbeat is stale, or whose process is known dead, has lost its claims:
    its ``sending`` digests are taken over (see ``digest/digests/claims.py``).
    """

    __tablename__ = "claimant"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # run worker
    host: str = Field(max_length=255)
    pid: int
    process_start: str | None = Field(default=None, max_length=40)  # tells a reused pid apart
    started_at: datetime = _ts(nullable=False)
    heartbeat_at: datetime = _ts(nullable=False)
    ended_at: datetime | None = _ts()


class Digest(SQLModel, table=True):
    """One subscriber's digest for one period; its status drives delivery.

    pending → sending → sent | failed | empty. Unique per (subscriber, period): a rerun or a
    crash can never produce a second digest for the same period.
    """

    __tablename__ = "digest"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "period_key", name="uq_digest_subscriber_period"),
        Index("ix_digest_status", "status"),
        # each subscriber's last window end (find_due) without reading every digest row
        Index("ix_digest_subscriber_window", "subscriber_id", "window_end"),
        # A feed's window in feed order without a sort (digest/render/feed_state.py).
        Index("ix_digest_feed", "subscriber_id", "status", "sent_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE", index=True)
    period_key: str = Field(max_length=40)
    period_label: str = Field(max_length=100)
    status: str = Field(default="pending", max_length=10)
    window_start: datetime = _ts(nullable=False)
    window_end: datetime = _ts(nullable=False)
    created_at: datetime = _ts(nullable=False)
    sent_at: datetime | None = _ts()
    message_id: str | None = Field(default=None, max_length=255)
    item_count: int = 0
    attempts: int = 0
    next_attempt_at: datetime | None = _ts()  # failed: when to retry; None = never (5xx)
    last_error: str | None = None
    subject: str | None = None
    # while ``sending``: the run or worker that claimed it; its claim lives as long as it does
    claimed_by: int | None = Field(default=None, foreign_key="claimant.id", ondelete="SET NULL")


class DigestItem(SQLModel, table=True):
    """A paper in a digest. Unique (subscriber, paper): the ledger of what was delivered."""

    __tablename__ = "digest_item"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "paper_id", name="uq_digest_item_subscriber_paper"),
        # Covers a feed window's items in rank order (digest/render/feed_state.py), and every
        # other lookup by digest: digest_id has no index of its own (migration 0009).
        Index("ix_digest_item_feed", "digest_id", "rank", "paper_id"),
    )

    # No foreign keys (migration 0010): their per-row checks were most of the weekly run's
    # 2-million-row insert. Items are written with their digest, in its transaction; deleting
    # a digest (or its subscriber) deletes its items by trigger (``digest_item_cascade``).
    id: int | None = Field(default=None, primary_key=True)
    digest_id: int
    subscriber_id: int  # the digest's subscriber
    # no index of its own: lookups go by (subscriber, paper); papers are never deleted, and
    # a 2-million-row weekly insert pays for every index
    paper_id: int
    rank: int
    score: float
    reason: str = ""
    matched: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Run(SQLModel, table=True):
    """One import, fetch or delivery run: when, what, how it ended."""

    __tablename__ = "run"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # import fetch deliver
    source: str | None = Field(default=None, max_length=500)
    status: str = Field(default="running", max_length=10)  # running ok error
    started_at: datetime = _ts(nullable=False, index=True)
    finished_at: datetime | None = _ts()
    new_count: int = 0
    seen_count: int = 0
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SchedulerLease(SQLModel, table=True):
    """Who runs the scheduler's jobs: one row per lease name, taken by an atomic upsert.

    The holder renews ``expires_at`` every heartbeat; anyone may take the row once it has
    expired. See ``digest/scheduler/lease.py``.
    """

    __tablename__ = "scheduler_lease"

    name: str = Field(primary_key=True, max_length=50)
    holder: str = Field(max_length=200)  # host:pid:random of the holding process
    acquired_at: datetime = _ts(nullable=False)
    heartbeat_at: datetime = _ts(nullable=False)
    expires_at: datetime = _ts(nullable=False)


# Listing sources (digest/sources/) ---------------------------------------------------


class SourceDefinition(SQLModel, table=True):
    """A source added by ``digest sources add``; digest.toml's ``[[sources]]`` stay in the file."""

    __tablename__ = "source"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    kind: str = Field(max_length=20)  # hf_daily arxiv feed file
    url: str | None = None
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts(nullable=False)


class SourceState(SQLModel, table=True):
    """Where a source stands, however it is defined: its cursor and its last outcomes."""

    __tablename__ = "source_state"

    name: str = Field(primary_key=True, max_length=100)
    last_date: date | None = None  # hf_daily: the last complete day fetched
    etag: str | None = Field(default=None, max_length=500)  # feeds: conditional GET
    last_modified: str | None = Field(default=None, max_length=100)
    last_success_at: datetime | None = _ts()
    last_error_at: datetime | None = _ts()
    last_error: str | None = None
    updated_at: datetime = _ts(nullable=False)


# Semantic ranking (digest/ranking/semantic.py) ------------------------------------------


class PaperEmbedding(SQLModel, table=True):
    """A paper's sentence embedding (title + abstract) under one model, computed once."""

    __tablename__ = "paper_embedding"

    paper_id: int = Field(foreign_key="paper.id", ondelete="CASCADE", primary_key=True)
    model: str = Field(primary_key=True, max_length=100)
    dim: int
    vector: bytes  # ``dim`` little-endian float32, L2-normalised


# The reader's feedback (digest/subscribers/feedback.py) -------------------------------------


class Feedback(SQLModel, table=True):
    """A subscriber's rating of a paper: +1 "more like this", -1 "less like this".

    One per (subscriber, paper); rating again replaces it, clearing deletes it."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "paper_id", name="uq_feedback_subscriber_paper"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscriber.id", ondelete="CASCADE", index=True)
    paper_id: int = Field(foreign_key="paper.id", ondelete="CASCADE", index=True)
    vote: int  # +1 or -1
    created_at: datetime = _ts(nullable=False)
