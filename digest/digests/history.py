"""A subscriber's delivered history as data, and back: what an export carries.

:func:`history_of` lists a subscriber's finished digests (``sent`` and ``empty``) with their
items by paper key; :func:`paper_data` the papers they name. :func:`restore_papers` and
:func:`restore_history` write them into another store: papers it lacks are added with their
original ``first_seen_at`` (so they are not new to anyone), digests for periods it already
has and papers the subscriber already received are skipped. The ledger's invariant holds:
a restored paper never reaches that subscriber again, and a restored period never gets a
second digest.

Digests still in flight (``pending``, ``sending``, ``failed``) are not carried: they were
never delivered, so their papers may be picked again. Restored rows are written here, in
their final state, because they are history, not a delivery (the ledger,
:mod:`.ledger`, owns every change of a live digest's status).

Functions take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlmodel import Session, col

from digest.store.models import Digest, DigestItem, Paper, Subscriber
from digest.store.papers import dialect_insert

FINISHED = ("sent", "empty")


class ItemData(BaseModel):
    """One delivered paper. (Room for more per-paper facts, e.g. a rating, in a later
    version of the export.)"""

    model_config = ConfigDict(extra="forbid")

    paper: str = Field(min_length=1, max_length=200)
    rank: int = Field(ge=0)
    score: float
    reason: str = ""
    matched: list[str] = Field(default_factory=list)


class DigestData(BaseModel):
    """One finished digest of a subscriber."""

    model_config = ConfigDict(extra="forbid")

    period: str = Field(min_length=1, max_length=40)
    label: str = Field(max_length=100)
    status: str = Field(pattern="^(sent|empty)$")
    window_start: datetime
    window_end: datetime
    created_at: datetime
    sent_at: datetime | None = None
    message_id: str | None = None
    subject: str | None = None
    items: list[ItemData] = Field(default_factory=list)


class PaperData(BaseModel):
    """A paper named by some history, as the store keeps it (without its row id)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200)
    title: str
    arxiv_id: str | None = None
    doi: str | None = None
    abstract: str = ""
    authors: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    url: str | None = None
    pdf_url: str | None = None
    published_at: datetime | None = None
    listed_at: datetime | None = None
    version: int | None = None
    upvotes: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    thumbnail: str | None = None
    ai_summary: str | None = None
    first_source: str = Field(max_length=200)
    first_seen_at: datetime
    updated_at: datetime


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def history_of(session: Session, subscriber: Subscriber) -> tuple[list[dict[str, Any]], set[int]]:
    """The subscriber's finished digests, oldest first, and the ids of the papers in them."""
    digests = session.execute(
        select(Digest)
        .where(col(Digest.subscriber_id) == subscriber.id, col(Digest.status).in_(FINISHED))
        .order_by(col(Digest.window_end), col(Digest.id))
    ).scalars()
    rows: list[dict[str, Any]] = []
    by_id: dict[int, dict[str, Any]] = {}
    for digest in digests:
        assert digest.id is not None
        row = {
            "period": digest.period_key,
            "label": digest.period_label,
            "status": digest.status,
            "window_start": _iso(digest.window_start),
            "window_end": _iso(digest.window_end),
            "created_at": _iso(digest.created_at),
            "sent_at": _iso(digest.sent_at),
            "message_id": digest.message_id,
            "subject": digest.subject,
            "items": [],
        }
        rows.append(row)
        by_id[digest.id] = row
    papers: set[int] = set()
    if not by_id:
        return rows, papers
    items = session.execute(
        select(DigestItem, col(Paper.key))
        .join(Paper, col(DigestItem.paper_id) == col(Paper.id))
        .where(col(DigestItem.subscriber_id) == subscriber.id)
        .order_by(col(DigestItem.digest_id), col(DigestItem.rank))
    ).all()
    for item, key in items:
        owner = by_id.get(item.digest_id)
        if owner is None:  # an item of a digest still in flight
            continue
        owner["items"].append(
            {
                "paper": key,
                "rank": item.rank,
                "score": item.score,
                "reason": item.reason,
                "matched": list(item.matched),
            }
        )
        papers.add(item.paper_id)
    return rows, papers


def paper_data(session: Session, paper_ids: Iterable[int]) -> dict[str, dict[str, Any]]:
    """The papers with these ids by key, every stored fact but the row id."""
    wanted = sorted(set(paper_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for paper in session.execute(select(Paper).where(col(Paper.id).in_(chunk))).scalars():
            data = paper.model_dump(mode="json", exclude={"id"})
            found[paper.key] = data
    return dict(sorted(found.items()))


def restore_papers(session: Session, papers: Sequence[PaperData]) -> dict[str, int]:
    """Add the papers the store lacks (as first seen then); ids of all of them by key."""
    insert = dialect_insert(session)
    keys = [paper.key for paper in papers]
    for start in range(0, len(papers), 500):
        chunk = papers[start : start + 500]
        session.execute(
            insert(Paper)
            .values([paper.model_dump() for paper in chunk])
            .on_conflict_do_nothing(index_elements=["key"])
        )
    return paper_ids(session, keys)


def paper_ids(session: Session, keys: Iterable[str]) -> dict[str, int]:
    """The row ids of the stored papers among ``keys``."""
    wanted = sorted(set(keys))
    ids: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found = session.execute(
            select(col(Paper.key), col(Paper.id)).where(col(Paper.key).in_(chunk))
        )
        ids.update({key: paper_id for key, paper_id in found})  # noqa: C416 - Row to pair
    return ids


@dataclass(slots=True)
class Restored:
    """What :func:`restore_history` added."""

    digests: int = 0
    items: int = 0


def restore_history(
    session: Session,
    subscriber: Subscriber,
    digests: Sequence[DigestData],
    paper_ids: Mapping[str, int],
) -> Restored:
    """Add the subscriber's finished digests and their items that the store lacks."""
    insert = dialect_insert(session)
    restored = Restored()
    for data in digests:
        digest_id = session.execute(
            insert(Digest)
            .values(
                subscriber_id=subscriber.id,
                period_key=data.period,
                period_label=data.label,
                status=data.status,
                window_start=data.window_start,
                window_end=data.window_end,
                created_at=data.created_at,
                sent_at=data.sent_at,
                message_id=data.message_id,
                subject=data.subject,
                item_count=len(data.items),
            )
            .on_conflict_do_nothing(index_elements=["subscriber_id", "period_key"])
            .returning(col(Digest.id))
        ).scalar()
        if digest_id is None:  # the store has a digest for this period already
            continue
        restored.digests += 1
        rows = [
            {
                "digest_id": digest_id,
                "subscriber_id": subscriber.id,
                "paper_id": paper_ids[item.paper],
                "rank": item.rank,
                "score": item.score,
                "reason": item.reason,
                "matched": item.matched,
            }
            for item in data.items
        ]
        if rows:
            added = session.execute(
                insert(DigestItem)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["subscriber_id", "paper_id"])
                .returning(col(DigestItem.id))
            ).all()
            restored.items += len(added)
    session.flush()
    return restored
