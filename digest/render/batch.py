"""Digests to render, in batches, as compact picklable payloads.

A run renders in worker processes: sending them ORM objects or whole views would cost more
than the rendering. A :class:`DigestPayload` carries what is particular to one digest (who,
which period, which papers with which scores and reasons); the papers themselves travel once
per worker as :class:`PaperFields`. Payloads come from the selection a run just recorded
(:func:`payloads_from_recorded`, no query) or from the store (:func:`load_batch`: a few
queries per batch, for digests recorded earlier: retries, other runs, queue workers).
:func:`digest_view` turns a payload back into the exact
:class:`~digest.render.views.DigestView` that :func:`~digest.render.assemble.digest_view`
builds from the store, so both paths render the same bytes.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlmodel import Session, col

from digest.digests.ledger import Item, Recorded, digest_key, run_of
from digest.render.assemble import ViewOptions, item_view
from digest.render.views import DigestView
from digest.store.db import one_of
from digest.store.models import Digest, DigestItem, Interest, Paper, Subscriber
from digest.subscribers.library import spec_of
from digest.subscribers.links import links_for


@dataclass(frozen=True, slots=True)
class PaperFields:
    """What a digest shows of a paper (the attributes ``item_view`` reads)."""

    id: int
    key: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    url: str | None
    arxiv_id: str | None
    doi: str | None
    pdf_url: str | None
    github_repo: str | None
    published_at: datetime | None
    listed_at: datetime | None
    upvotes: int | None

    @classmethod
    def of(cls, paper: Paper) -> PaperFields:
        assert paper.id is not None
        return cls(
            paper.id,
            paper.key,
            paper.title,
            paper.abstract,
            tuple(paper.authors),
            paper.url,
            paper.arxiv_id,
            paper.doi,
            paper.pdf_url,
            paper.github_repo,
            paper.published_at,
            paper.listed_at,
            paper.upvotes,
        )


@dataclass(frozen=True, slots=True)
class DigestPayload:
    """One digest to render: everything but the papers' own fields."""

    digest_id: int
    subscriber_id: int
    key: str
    email: str
    name: str | None
    token: str
    period_label: str
    generated_at: datetime
    items: tuple[Item, ...]
    interests: tuple[str, ...]


@dataclass(slots=True)
class Batch:
    """Payloads to render and the papers they need that the renderer may not have yet."""

    payloads: list[DigestPayload] = field(default_factory=list)
    papers: dict[int, PaperFields] = field(default_factory=dict)


def digest_view(
    payload: DigestPayload, papers: Mapping[int, PaperFields], *, options: ViewOptions
) -> DigestView:
    """The view of a recorded digest, items in rank order (see the module docstring)."""
    votes = options.votes_for(payload.subscriber_id, payload.token)
    return DigestView(
        key=payload.key,
        subscriber_email=payload.email,
        subscriber_name=payload.name,
        period_label=payload.period_label,
        generated_at=payload.generated_at,
        items=tuple(
            item_view(
                papers[paper_id],
                reason=reason,
                matched=matched,
                score=score,
                votes=votes(papers[paper_id].key),
            )
            for paper_id, score, reason, matched in payload.items
        ),
        links=links_for(options.base_url, payload.token),
        interests=payload.interests,
    )


class RecordedPayloads(Mapping[int, DigestPayload]):
    """Payloads of digests a run has just recorded, by digest id: no query. Each is built
    when asked for (a batch at a time), from the recorded picks: never all at once."""

    def __init__(self, recorded: Sequence[Recorded], *, now: datetime) -> None:
        self._now = now
        # Empty digests are never sent (unless send_empty made them pending).
        self._by_id = {
            entry.digest_id: entry
            for entry in recorded
            if not (entry.status == "empty" and not entry.selection.count)
        }

    def __getitem__(self, digest_id: int) -> DigestPayload:
        entry = self._by_id[digest_id]
        due = entry.due
        subscriber = due.subscriber
        assert subscriber.id is not None
        return DigestPayload(
            digest_id=entry.digest_id,
            subscriber_id=subscriber.id,
            key=digest_key(subscriber.id, due.period.key),
            email=subscriber.email,
            name=subscriber.name,
            token=subscriber.token,
            period_label=due.period.label,
            generated_at=self._now,
            items=entry.items(),
            interests=due.interests,
        )

    def __contains__(self, digest_id: object) -> bool:
        return digest_id in self._by_id

    def __iter__(self) -> Iterator[int]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)


def payloads_from_recorded(recorded: Sequence[Recorded], *, now: datetime) -> RecordedPayloads:
    """Payloads of digests a run has just recorded, by digest id (built on demand)."""
    return RecordedPayloads(recorded, now=now)


def papers_of(recorded: Sequence[Recorded]) -> dict[int, PaperFields]:
    """Every paper the recorded digests show (the renderers' starting set)."""
    papers: dict[int, PaperFields] = {}
    # Consecutive digests of one ranking (one run: all of them): their picks' papers at once.
    for _, group in itertools.groupby(recorded, key=run_of):
        entries = list(group)
        ranking, candidates = entries[0].selection.ranking, entries[0].selection.papers
        rows = np.array([entry.selection.row for entry in entries], dtype=np.int64)
        starts, stops = ranking.bounds[rows], ranking.bounds[rows + 1]
        shown = np.zeros(ranking.docs.size + 1, dtype=np.int64)  # +1 at a start, -1 at a stop
        np.add.at(shown, starts, 1)
        np.add.at(shown, stops, -1)
        docs = ranking.docs[np.cumsum(shown[:-1]) > 0]
        _, first = np.unique(docs, return_index=True)  # in order of first appearance
        for doc in docs[np.sort(first)].tolist():
            paper = candidates[doc]
            if paper.id is not None and paper.id not in papers:
                papers[paper.id] = PaperFields.of(paper)
    return papers


def load_batch(session: Session, digest_ids: Sequence[int], *, known_papers: set[int]) -> Batch:
    """Payloads of recorded digests read from the store: three or four queries per batch.

    ``known_papers`` are papers the renderers already hold; only the others are read.
    """
    batch = Batch()
    if not digest_ids:
        return batch
    ids = list(digest_ids)
    heads = session.execute(
        select(
            col(Digest.id),
            col(Digest.subscriber_id),
            col(Digest.period_key),
            col(Digest.period_label),
            col(Digest.window_end),
            col(Subscriber.email),
            col(Subscriber.name),
            col(Subscriber.token),
        )
        .join(Subscriber, col(Digest.subscriber_id) == col(Subscriber.id))
        .where(col(Digest.id).in_(ids))
        .order_by(col(Digest.id))
    ).all()
    items: dict[int, list[Item]] = defaultdict(list)
    needed: set[int] = set()
    for digest_id, paper_id, score, reason, stored in session.execute(
        select(
            col(DigestItem.digest_id),
            col(DigestItem.paper_id),
            col(DigestItem.score),
            col(DigestItem.reason),
            col(DigestItem.matched),
        )
        .where(col(DigestItem.digest_id).in_(ids))
        .order_by(col(DigestItem.digest_id), col(DigestItem.rank))
    ).all():
        # a JSON column some drivers hand back raw
        matched = json.loads(stored) if isinstance(stored, str) else stored
        items[digest_id].append((paper_id, score, reason, tuple(matched)))
        if paper_id not in known_papers:
            needed.add(paper_id)
    interests = _interest_texts(session, sorted({row[1] for row in heads}))
    for paper_ids in one_of(session, col(Paper.id), sorted(needed)):
        for paper in session.execute(select(Paper).where(paper_ids)).scalars():
            batch.papers[paper.id or 0] = PaperFields.of(paper)
    for digest_id, subscriber_id, period_key, label, window_end, email, name, token in heads:
        batch.payloads.append(
            DigestPayload(
                digest_id=digest_id,
                subscriber_id=subscriber_id,
                key=digest_key(subscriber_id, period_key),
                email=email,
                name=name,
                token=token,
                period_label=label,
                generated_at=window_end,
                items=tuple(items[digest_id]),
                interests=interests.get(subscriber_id, ()),
            )
        )
    return batch


def _interest_texts(session: Session, subscriber_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """Each subscriber's interests as they read them (the digest footer)."""
    rows: dict[int, list[Interest]] = defaultdict(list)
    for subscribers in one_of(session, col(Interest.subscriber_id), subscriber_ids):
        for interest in session.execute(select(Interest).where(subscribers)).scalars():
            rows[interest.subscriber_id].append(interest)
    return {sid: tuple(spec_of(found).keywords) for sid, found in rows.items()}
