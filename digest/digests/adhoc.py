"""``digest rank``: rank listing files for an ad-hoc profile, without the store; or, with
``--subscriber``, for a stored subscriber's profile and ratings (read-only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from digest.digests.due import DueOptions, find_due
from digest.digests.selection import rank_doc
from digest.parsers import read_listing_file
from digest.ranking.base import Pick, Profile, RankDoc, Ranker, UsesStore
from digest.ranking.profile_text import build_profile
from digest.store import db
from digest.store.papers import merge_records, papers_first_seen_between
from digest.subscribers.library import get_subscriber

if TYPE_CHECKING:
    from digest.config.settings import Settings


def rank_listings(
    files: Sequence[Path],
    keywords: Sequence[str],
    excludes: Sequence[str],
    *,
    required: Sequence[str] = (),
    top: int = 10,
    min_score: float | None = None,
    fmt: str = "auto",
    max_bytes: int,
    ranker: Ranker,
) -> list[dict[str, Any]]:
    """Best ``top`` papers of the files for the profile, duplicates across files merged."""
    profile = build_profile(keywords, excludes, required=required, min_score=min_score)
    return _ranked(ranker, _listed(files, fmt=fmt, max_bytes=max_bytes), profile, top)


def rank_subscriber(
    settings: Settings,
    email: str,
    files: Sequence[Path],
    *,
    top: int,
    now: datetime,
    fmt: str = "auto",
    ranker: Ranker,
) -> list[dict[str, Any]]:
    """Best ``top`` papers for a stored subscriber's profile and ratings: those of the
    listing files or, without files, the store's papers of their current window (delivered
    ones included). Read-only: the session is rolled back."""
    listed = _listed(files, fmt=fmt, max_bytes=settings.max_listing_bytes) if files else None
    with Session(db.get_engine(settings)) as session:
        subscriber = get_subscriber(session, email)
        options = DueOptions.from_settings(settings)
        [due] = find_due(session, now=now, options=options, only=subscriber, ignore_existing=True)
        if listed is None:
            papers = papers_first_seen_between(session, due.window_start, now)
            listed = [(rank_doc(paper), paper.url) for paper in papers]
        if isinstance(ranker, UsesStore):  # e.g. the semantic ranker's paper vectors
            ranker = ranker.with_session(session)
        ranked = _ranked(ranker, listed, due.profile, top)
        session.rollback()
    return ranked


def _listed(files: Sequence[Path], *, fmt: str, max_bytes: int) -> list[tuple[RankDoc, str | None]]:
    """The papers of listing files (and their URLs), duplicates across files merged."""
    records = []
    for path in files:
        records.extend(read_listing_file(path, fmt=fmt, max_bytes=max_bytes).records)
    return [
        (
            RankDoc(
                key=p.key,
                title=p.title,
                abstract=p.abstract,
                authors=p.authors,
                categories=p.categories,
                upvotes=p.upvotes,
            ),
            p.url,
        )
        for p in merge_records(records).values()
    ]


def _ranked(
    ranker: Ranker, listed: list[tuple[RankDoc, str | None]], profile: Profile, top: int
) -> list[dict[str, Any]]:
    """The picks as ``digest rank --json`` prints them."""
    if not listed:
        return []
    docs = [doc for doc, _ in listed]
    picks: list[Pick] = ranker.rank(ranker.prepare(docs), [profile], top_n=top)[0]
    return [
        {
            "title": docs[pick.index].title,
            "key": docs[pick.index].key,
            "url": listed[pick.index][1],
            "score": round(float(pick.score), 4),
            "matched": [m.interest for m in pick.matches],
            "where": {m.interest: list(m.fields) for m in pick.matches},
            "reason": pick.reason(),
        }
        for pick in picks
    ]
