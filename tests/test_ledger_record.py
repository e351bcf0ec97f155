"""Recording a run's digests in bulk (``ledger.record_digests``): every stored item is its
pick, in rank order, with the pick's own explanation, on SQLite and PostgreSQL.

Explanations are built once per distinct wording and shared between picks; these readers
share interests and papers, so picks of different papers and subscribers share some.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from sqlmodel import col

from digest.config.settings import Settings
from digest.digests import ledger
from digest.digests.due import DueOptions, find_due
from digest.digests.selection import select_papers
from digest.ranking import Interest, LexicalRanker, Profile, RankDoc, get_ranker
from digest.ranking.base import RanksInArrays
from digest.runner import build_due_digests
from digest.store import db
from digest.store.models import DigestItem
from digest.store.papers import upsert_records
from digest.store.records import PaperRecord
from digest.subscribers.library import ProfileSpec, SubscriberFields, add_subscriber

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SEED_PAPERS = Path(__file__).parent / "data" / "ranking" / "seed_papers.json"
PHRASES = [
    "reinforcement learning", "language models", "reasoning", "diffusion", "video",
    "robot manipulation", "in-context learning", "self-supervised", "reward model",
    "benchmark", "vision-language models", "transformer", "agents", "speech",
]  # fmt: skip
PAPERS = [
    ("Diffusion models for video generation", "We train video diffusion models at scale."),
    ("Graph neural networks for molecules", "Message passing over molecular graphs."),
    ("Neural networks that read graphs", "A network architecture for graph inputs."),
    ("Offline reinforcement learning revisited", "Offline RL with conservative value estimates."),
    ("Skill discovery for robots", "Robots learn reusable skills without rewards."),
    ("Video generation without diffusion", "Autoregressive video models and their limits."),
    ("Contrastive learning of molecular graphs", "Self-supervised graph representations."),
    ("Reward models for language models", "We study reward model overoptimisation."),
]
READERS = [
    ["diffusion models", "video generation"],
    ["graph neural networks", "molecules^2"],
    ["offline RL", "skill learning", "reward model"],
    ["diffusion models", "graph neural networks", "contrastive learning"],
    ["video generation", "offline reinforcement learning"],
    ["self-supervised learning", "molecular graphs", "diffusion"],
]


def store_readers(settings: Settings) -> None:
    """The papers, and one daily subscriber per reader of :data:`READERS`."""
    records = [PaperRecord(title=t, abstract=a) for t, a in PAPERS]
    with db.transaction(settings) as session:
        upsert_records(session, records, source="test", now=NOW - timedelta(hours=3))
        for i, keywords in enumerate(READERS):
            add_subscriber(
                session,
                email=f"reader{i}@example.org",
                profile=ProfileSpec(keywords=keywords),
                fields=SubscriberFields(frequency="daily"),
                settings=settings,
                now=NOW - timedelta(days=2),
            )


def test_stored_items_are_the_picks_with_their_own_explanations(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    store_readers(settings)
    _, recorded, _ = build_due_digests(
        db.get_engine(settings), settings=settings, now=NOW, ranker=get_ranker()
    )
    expected = {
        entry.digest_id: [
            (
                paper.id,
                rank,
                round(float(pick.score), 6),
                pick.reason(),
                [m.interest for m in pick.matches],
            )
            for rank, (paper, pick) in enumerate(entry.selection.paired(), start=1)
        ]
        for entry in recorded
    }
    assert len(expected) == len(READERS)
    reasons = [item[3] for items in expected.values() for item in items]
    assert len(reasons) > len(set(reasons)) > 3  # some shared, several distinct
    with db.transaction(settings) as session:
        rows = session.execute(
            select(
                col(DigestItem.digest_id),
                col(DigestItem.paper_id),
                col(DigestItem.rank),
                col(DigestItem.score),
                col(DigestItem.reason),
                col(DigestItem.matched),
            ).order_by(col(DigestItem.digest_id), col(DigestItem.rank))
        ).all()
    stored: dict[int, list[tuple[object, ...]]] = {}
    for digest_id, *item in rows:
        stored.setdefault(digest_id, []).append(tuple(item))
    assert stored == {d: [tuple(i) for i in items] for d, items in expected.items() if items}
    for entry in recorded:  # what rendering reads from memory is the same
        assert list(entry.items()) == [
            (p, s, r, tuple(m)) for p, _, s, r, m in expected[entry.digest_id]
        ]


class ObjectsOnly:
    """A ranker that gives its picks as objects only (no ``ranking``): what a plug-in
    ranker without arrays looks like to the run."""

    def __init__(self, inner: LexicalRanker) -> None:
        self.name = inner.name
        self.prepare = inner.prepare
        self.rank = inner.rank


def test_a_ranker_without_arrays_selects_the_same_picks(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    store_readers(settings)
    assert isinstance(LexicalRanker(), RanksInArrays)
    assert not isinstance(ObjectsOnly(LexicalRanker()), RanksInArrays)
    with db.transaction(settings) as session:
        due = find_due(session, now=NOW, options=DueOptions.from_settings(settings))
        chosen = {
            kind: [
                [(paper.id, pick) for paper, pick in selection.paired()]
                for selection in select_papers(
                    session, due, now=NOW, max_items=settings.max_items, ranker=ranker
                )
            ]
            for kind, ranker in (
                ("arrays", LexicalRanker()),
                ("objects", ObjectsOnly(LexicalRanker())),
            )
        }
    assert sum(map(len, chosen["arrays"])) > len(READERS)
    assert chosen["objects"] == chosen["arrays"]


@pytest.mark.parametrize("at_once", [ledger.EXPLAIN_AT_ONCE, 7])
def test_every_pick_gets_its_own_explanation(at_once: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``ledger.explain`` builds each distinct explanation once, for a whole ranking: every
    pick's is the one ``Pick.reason`` gives it, with its matched interests as JSON."""
    monkeypatch.setattr(ledger, "EXPLAIN_AT_ONCE", at_once)  # a size knob, not the logic
    papers = json.loads((SEED_PAPERS).read_text(encoding="utf-8"))
    docs = [RankDoc(f"seed:{i}", p["title"], p["abstract"]) for i, p in enumerate(papers)]
    ranker = LexicalRanker()
    rng = random.Random(5)
    profiles = [
        Profile(tuple(Interest(w) for w in rng.sample(PHRASES, rng.randint(1, 5))))
        for _ in range(300)
    ]
    ranking = ranker.ranking(ranker.prepare(docs), profiles, top_n=12, chunk_size=64)
    explanations = ledger.explain(ranking)
    picks = [pick for row in ranking.lists() for pick in row]
    assert len({len(pick.matches) for pick in picks}) >= 3  # one match, two, more
    got = [explanations.table[at] for at in explanations.of_pick.tolist()]
    interests = [tuple(m.interest for m in pick.matches) for pick in picks]
    assert got == [
        (pick.reason(), said, json.dumps(list(said)))
        for pick, said in zip(picks, interests, strict=True)
    ]
    assert len(explanations.table) == len(set(got)) < len(picks)  # each distinct one once
    # The columns a stored row takes: the table's reasons and matched interests as JSON.
    assert explanations.reasons == [reason for reason, _, _ in explanations.table]
    assert explanations.matched_json == [said for _, _, said in explanations.table]


def test_scores_are_rounded_as_round_rounds_them() -> None:
    """``ledger.rounded`` stores what ``round(score, 6)`` gives, value for value, including
    the scores whose scaling by 10^6 lands on or next to a half (the product's own rounding
    could move those across it), negative and huge scores, infinities and NaN."""
    rng = np.random.default_rng(3)
    halves = (rng.integers(0, 5_000_000, 20_000) + 0.5) / 1e6  # at a half, give or take
    scores = np.concatenate(
        [
            rng.random(50_000) * 3,  # as the ranker's scores are
            halves,
            np.nextafter(halves, 0.0),
            np.nextafter(halves, 10.0),
            -halves,
            rng.random(1_000) * 1e12,  # beyond exact integers once scaled
            [0.0, -0.0, 5e-7, 1.5e-6, 2.5e-6, 0.1234565, 2**52 / 1e6, np.inf, -np.inf],
        ]
    )
    got = ledger.rounded(scores)
    expected = [round(score, 6) for score in scores.tolist()]
    assert got == expected  # equal floats (the same doubles)
    assert [math.copysign(1.0, v) for v in got] == [math.copysign(1.0, v) for v in expected]
    nan = ledger.rounded(np.array([np.nan]))
    assert len(nan) == 1 and math.isnan(nan[0])
    assert ledger.rounded(np.zeros(0)) == []


def test_only_postgresql_explains_beside_the_insert(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    """The digest rows' insert runs on a thread beside the explanations only where the
    database's work leaves the GIL free (PostgreSQL), never on SQLite, whose driver takes
    the GIL back after every row."""
    settings = make_settings()
    with db.transaction(settings) as session:
        assert ledger._driver_waits_unlocked(session) is (backend == "postgres")
