"""``digest rank``: rank listing files for an ad-hoc profile, without the store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from digest.parsers import read_listing_file
from digest.ranking.base import RankDoc, Ranker
from digest.ranking.profile_text import build_profile
from digest.store.papers import merge_records


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
    records = []
    for path in files:
        records.extend(read_listing_file(path, fmt=fmt, max_bytes=max_bytes).records)
    papers = list(merge_records(records).values())
    docs = [
        RankDoc(
            key=p.key,
            title=p.title,
            abstract=p.abstract,
            authors=p.authors,
            categories=p.categories,
            upvotes=p.upvotes,
        )
        for p in papers
    ]
    if not docs:
        return []
    picks = ranker.rank(ranker.prepare(docs), [profile], top_n=top)[0]
    return [
        {
            "title": papers[pick.index].title,
            "key": papers[pick.index].key,
            "url": papers[pick.index].url,
            "score": round(float(pick.score), 4),
            "matched": [m.interest for m in pick.matches],
            "where": {m.interest: list(m.fields) for m in pick.matches},
            "reason": pick.reason(),
        }
        for pick in picks
    ]
