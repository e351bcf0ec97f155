"""Candidate selection: rank every due subscriber's new papers at once.

For every due subscriber the candidates are the papers first seen in their digest's window
(since their previous digest; first digest: ``lookback_days``), minus what the ledger says
they already got. All due subscribers are ranked in one call; the result is kept in memory
(as arrays: :class:`~digest.ranking.base.Ranking`) and handed to
:mod:`digest.digests.ledger` to record. Read-only: nothing here writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlmodel import Session, col

from digest.digests.due import Due
from digest.ranking.base import Pick, RankDoc, Ranker, Ranking, RanksInArrays, UsesStore
from digest.ranking.memory import release_free_memory
from digest.store.db import one_of
from digest.store.models import DigestItem, Paper
from digest.store.papers import papers_first_seen_between


@dataclass(slots=True)
class Selection:
    """The picks of one due subscriber, best first: row ``row`` of the run's
    :class:`~digest.ranking.base.Ranking` (arrays, shared by every selection of the run).
    ``papers`` is the run's list of candidate papers, shared too: a pick's ``index`` points
    into it."""

    due: Due
    ranking: Ranking
    row: int
    papers: Sequence[Paper] = ()

    @property
    def count(self) -> int:
        """How many papers were picked."""
        return self.ranking.count(self.row)

    @property
    def picks(self) -> list[Pick]:
        """The picks as objects, made when asked for (a run keeps only the arrays)."""
        return self.ranking.picks(self.row)

    def paired(self) -> Iterator[tuple[Paper, Pick]]:
        """Each pick with its paper."""
        papers = self.papers
        return ((papers[pick.index], pick) for pick in self.picks)


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
    session: Session, due: Sequence[Due], *, now: datetime, max_items: int, ranker: Ranker
) -> list[Selection]:
    """Rank every due subscriber's candidates at once; read-only."""
    if not due:
        return []
    earliest = min(d.window_start for d in due)
    papers = papers_first_seen_between(session, earliest, now)
    if not papers:
        none = Ranking.empty(len(due))
        return [Selection(d, none, row, papers) for row, d in enumerate(due)]
    index = {paper.id: i for i, paper in enumerate(papers)}
    seen_at = np.array([p.first_seen_at.timestamp() for p in papers])
    starts = np.array([d.window_start.timestamp() for d in due])
    row_of = {d.subscriber.id: i for i, d in enumerate(due)}
    delivered: dict[int, list[int]] = defaultdict(list)
    for subscribers in one_of(session, col(DigestItem.subscriber_id), list(row_of)):
        for paper_ids in one_of(session, col(DigestItem.paper_id), list(index)):
            ledger = select(col(DigestItem.subscriber_id), col(DigestItem.paper_id)).where(
                subscribers, paper_ids
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
    top_n = [d.subscriber.max_items or max_items for d in due]
    profiles = [d.profile for d in due]
    if isinstance(ranker, RanksInArrays):
        ranking = ranker.ranking(prepared, profiles, top_n=top_n, eligible=eligible)
    else:
        ranking = Ranking.of(ranker.rank(prepared, profiles, top_n=top_n, eligible=eligible))
    del prepared, eligible, profiles  # the paper index and the ledger's pairs
    release_free_memory()
    return [Selection(d, ranking, row, papers) for row, d in enumerate(due)]
