"""Due digests, candidate selection and the digest ledger.

For every due subscriber the candidates are the papers first seen since their previous
digest (first digest: ``lookback_days``), minus what the ledger says they already got. All
due subscribers are ranked at once; the picks become a digest row and its items in one
transaction, so a crash before commit leaves nothing and a crash after leaves a pending
digest that the next run delivers. Functions here take a session and never commit.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlmodel import Session, col

from digest.db import chunks
from digest.models import Digest, DigestItem, Interest, Paper, Subscriber
from digest.ranking.base import Pick, Profile, RankDoc, Ranker, UsesStore
from digest.schedule import Frequency, Period, is_due, period_for
from digest.settings import Settings
from digest.store import dialect_insert, papers_first_seen_between
from digest.subscribers import profile_of


@dataclass(slots=True)
class Due:
    """A subscriber whose current period needs a digest, and the window it covers."""

    subscriber: Subscriber
    period: Period
    window_start: datetime
    profile: Profile


@dataclass(slots=True)
class Selection:
    """The picks of one due subscriber."""

    due: Due
    picks: list[tuple[Paper, Pick]]


def digest_key(subscriber_id: int, period_key: str) -> str:
    """The stable key of a digest; its Message-ID derives from it."""
    return f"{subscriber_id}:{period_key}"


def find_due(
    session: Session,
    *,
    now: datetime,
    settings: Settings,
    only: Subscriber | None = None,
    ignore_existing: bool = False,
) -> list[Due]:
    """Subscribers whose period has come and has no digest yet.

    ``only`` forces that subscriber's current period regardless of its send time (the
    ``--subscriber`` option); an existing digest for the period still wins.
    """
    if only is not None:
        subscribers = [only]
    else:
        statement = select(Subscriber).where(
            col(Subscriber.status) == "active",
            col(Subscriber.frequency) != "off",
            col(Subscriber.bounce_count) < settings.bounce_limit,
        )
        subscribers = list(session.execute(statement.order_by(col(Subscriber.id))).scalars())
    candidates: list[tuple[Subscriber, Period]] = []
    for subscriber in subscribers:
        # --subscriber on someone whose digests are off still previews a weekly one
        frequency = cast(
            Frequency,
            "weekly"
            if only is not None and subscriber.frequency == "off"
            else subscriber.frequency,
        )
        period = period_for(
            frequency,
            now=now,
            weekday=subscriber.weekday,
            hour=subscriber.hour,
            timezone=subscriber.timezone,
        )
        if period is not None and (only is not None or is_due(period, now)):
            candidates.append((subscriber, period))
    if not candidates:
        return []
    existing: set[tuple[int, str]] = set()
    last_end: dict[int, datetime] = {}
    interests: dict[int, list[Interest]] = defaultdict(list)
    for ids in chunks([s.id for s, _ in candidates]):
        existing.update(
            session.execute(
                select(col(Digest.subscriber_id), col(Digest.period_key)).where(
                    col(Digest.subscriber_id).in_(ids)
                )
            ).all()
        )
        last_end.update(
            session.execute(
                select(col(Digest.subscriber_id), func.max(col(Digest.window_end)))
                .where(col(Digest.subscriber_id).in_(ids))
                .group_by(col(Digest.subscriber_id))
            ).all()
        )
        for row in session.execute(
            select(Interest).where(col(Interest.subscriber_id).in_(ids))
        ).scalars():
            interests[row.subscriber_id].append(row)
    lookback = now - timedelta(days=settings.lookback_days)
    due = []
    for subscriber, period in candidates:
        assert subscriber.id is not None
        if (subscriber.id, period.key) in existing and not ignore_existing:
            continue
        profile = profile_of(subscriber, interests[subscriber.id])
        if profile.min_score is None and settings.min_score is not None:
            profile = dataclasses.replace(profile, min_score=settings.min_score)
        start = last_end.get(subscriber.id) or lookback
        due.append(Due(subscriber, period, min(start, now), profile))
    return due


def rank_doc(paper: Paper) -> RankDoc:
    return RankDoc(
        key=paper.key,
        title=paper.title,
        abstract=paper.abstract,
        authors=tuple(paper.authors),
        categories=tuple(paper.categories),
        upvotes=paper.upvotes,
    )


def select_papers(
    session: Session, due: Sequence[Due], *, now: datetime, settings: Settings, ranker: Ranker
) -> list[Selection]:
    """Rank every due subscriber's candidates at once; read-only."""
    if not due:
        return []
    earliest = min(d.window_start for d in due)
    papers = papers_first_seen_between(session, earliest, now)
    if not papers:
        return [Selection(d, []) for d in due]
    index = {paper.id: i for i, paper in enumerate(papers)}
    seen_at = np.array([p.first_seen_at.timestamp() for p in papers])
    starts = np.array([d.window_start.timestamp() for d in due])
    row_of = {d.subscriber.id: i for i, d in enumerate(due)}
    delivered: dict[int, list[int]] = defaultdict(list)
    for subscriber_ids in chunks(list(row_of)):
        for paper_ids in chunks(list(index)):
            ledger = select(col(DigestItem.subscriber_id), col(DigestItem.paper_id)).where(
                col(DigestItem.subscriber_id).in_(subscriber_ids),
                col(DigestItem.paper_id).in_(paper_ids),
            )
            for subscriber_id, paper_id in session.execute(ledger).all():
                delivered[row_of[subscriber_id]].append(index[paper_id])

    def eligible(start: int, stop: int) -> npt.NDArray[np.bool_]:
        mask = seen_at[None, :] > starts[start:stop, None]
        for row in range(start, stop):
            if delivered.get(row):
                mask[row - start, delivered[row]] = False
        return mask

    if isinstance(ranker, UsesStore):  # e.g. the semantic ranker caches paper vectors
        ranker = ranker.with_session(session)
    prepared = ranker.prepare([rank_doc(p) for p in papers])
    top_n = [d.subscriber.max_items or settings.max_items for d in due]
    picks = ranker.rank(prepared, [d.profile for d in due], top_n=top_n, eligible=eligible)
    return [
        Selection(d, [(papers[p.index], p) for p in row]) for d, row in zip(due, picks, strict=True)
    ]


def record_digest(
    session: Session, selection: Selection, *, now: datetime, keep_empty: bool = False
) -> Digest | None:
    """Write the digest row and its ledger items; None if the period already has a digest.

    An empty selection is recorded as ``empty`` (no email) unless ``keep_empty`` asks for a
    short "nothing new" note, which is then delivered like any digest.
    """
    due = selection.due
    subscriber = due.subscriber
    insert = dialect_insert(session)
    statement = (
        insert(Digest)
        .values(
            subscriber_id=subscriber.id,
            period_key=due.period.key,
            period_label=due.period.label,
            status="pending" if selection.picks or keep_empty else "empty",
            window_start=due.window_start,
            window_end=now,
            created_at=now,
            item_count=len(selection.picks),
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["subscriber_id", "period_key"])
        .returning(col(Digest.id))
    )
    digest_id = session.execute(statement).scalar()
    if digest_id is None:  # another run got there first
        return None
    if selection.picks:
        rows = [
            {
                "digest_id": digest_id,
                "subscriber_id": subscriber.id,
                "paper_id": paper.id,
                "rank": rank,
                "score": round(float(pick.score), 6),
                "reason": pick.reason(),
                "matched": [m.interest for m in pick.matches],
            }
            for rank, (paper, pick) in enumerate(selection.picks, start=1)
        ]
        session.execute(
            insert(DigestItem)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["subscriber_id", "paper_id"])
        )
    return session.get(Digest, digest_id)
