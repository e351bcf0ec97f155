"""The semantic ranker (optional extra). Skipped, with the reason, when it is not installed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from digest.config.settings import Settings
from digest.errors import ConfigError
from digest.ranking import LexicalRanker, RankDoc, Rated, build_profile, get_ranker
from digest.ranking.semantic import missing_extra
from digest.store import db
from digest.store.papers import upsert_records
from digest.store.records import PaperRecord

MISSING = missing_extra()
needs_extra = pytest.mark.skipif(
    MISSING is not None,
    reason=f"semantic extra not installed ({MISSING} missing): "
    "pip install torch==2.13.0 && pip install 'paper-digest[semantic]'",
)
NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)
DOCS = [
    RankDoc(
        "cars",
        "Seeing pedestrians from a self-driving car",
        "We detect people crossing the road from lidar point clouds on a moving car, in "
        "real time, and test on city streets.",
    ),
    RankDoc(
        "proteins",
        "Folding proteins with attention",
        "A network predicts the structure of proteins from their amino acid sequence.",
    ),
    RankDoc(
        "words",
        "Autonomous vehicles: a planning stack",
        "Autonomous vehicles need planning under uncertainty; we present a planner for them.",
    ),
    RankDoc(
        "speech",
        "Transcribing meetings",
        "Automatic transcription of spoken meetings with many speakers.",
    ),
]


@pytest.mark.skipif(MISSING is None, reason="the semantic extra is installed")
def test_missing_extra_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match=r"install paper-digest\[semantic\] \(torch==2.13.0"):
        get_ranker("semantic")


@needs_extra
def test_similar_papers_are_picked_and_explained() -> None:
    profile = build_profile(["autonomous vehicles"])
    [lexical] = LexicalRanker().rank(LexicalRanker().prepare(DOCS), [profile], top_n=10)
    assert [DOCS[p.index].key for p in lexical] == ["words"]
    ranker = get_ranker("semantic")
    [picks] = ranker.rank(ranker.prepare(DOCS), [profile], top_n=10)
    keys = [DOCS[p.index].key for p in picks]
    # The paper that says the words stays first; the one that only means them follows.
    assert keys[:2] == ["words", "cars"]
    assert "proteins" not in keys and "speech" not in keys
    assert picks[0].reason() == "matched \u201cautonomous vehicles\u201d (title, abstract)"
    assert picks[0].score > lexical[0].score  # the similarity part is added to the words'
    assert picks[1].reason() == "similar to \u201cautonomous vehicles\u201d"
    assert picks[1].matches[0].fields == ("meaning",)


@needs_extra
def test_exclusions_thresholds_and_authors_still_apply() -> None:
    ranker = get_ranker("semantic")
    prepared = ranker.prepare(DOCS)
    excluded, strict, author = ranker.rank(
        prepared,
        [
            build_profile(["autonomous vehicles"], ["lidar"]),
            build_profile(["autonomous vehicles"], min_score=0.9),
            build_profile([], authors=["Ada Lovelace"]),
        ],
        top_n=10,
    )
    assert [DOCS[p.index].key for p in excluded] == ["words"]
    assert all(p.score >= 0.9 for p in strict) and "cars" not in {DOCS[p.index].key for p in strict}
    assert author == []  # authors get no similarity part


@needs_extra
def test_paper_vectors_are_cached_in_the_store(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    records = [PaperRecord(title=d.title, abstract=d.abstract) for d in DOCS]
    docs = [RankDoc(r.key, r.title, r.abstract) for r in records]
    ranker = get_ranker("semantic")
    profile = build_profile(["autonomous vehicles"])
    with db.transaction(settings) as session:
        upsert_records(session, records, source="test", now=NOW)
    results = []
    for _ in range(2):
        with db.transaction(settings) as session:
            bound = ranker.with_session(session)  # type: ignore[attr-defined]  # the semantic ranker's own method
            results.append(bound.rank(bound.prepare(docs), [profile], top_n=5))
            results.append(bound.papers_embedded)
    first, computed_first, second, computed_second = results
    assert computed_first == len(docs)
    assert computed_second == 0  # every vector came from paper_embedding
    assert second == first


@needs_extra
def test_a_paper_close_in_meaning_to_one_rated_up_rises() -> None:
    """The rated paper shares a few words with the "cars" paper and most of its meaning:
    the semantic ranker lifts it much more than the words alone do."""
    liked = RankDoc(
        "rated:pedestrians",
        "Pedestrian detection for self-driving cars",
        "Spotting people who cross the street from laser scans on a driving car, quickly.",
    )
    profile = build_profile(["autonomous vehicles"])
    rated = dataclasses.replace(profile, rated=(Rated(liked, 1),))
    lexical = LexicalRanker()
    semantic = get_ranker("semantic")
    scores = {}
    for name, ranker in (("lexical", lexical), ("semantic", semantic)):
        prepared = ranker.prepare(DOCS)
        plain, learned = ranker.rank(prepared, [profile, rated], top_n=10)
        scores[name] = (
            {DOCS[p.index].key: p.score for p in plain},
            {DOCS[p.index].key: p for p in learned},
        )
    plain, learned = scores["semantic"]
    assert learned["cars"].score > plain["cars"]
    assert "that you rated up" in learned["cars"].reason()
    lexical_gain = scores["lexical"][1].get("cars")
    lexical_before = scores["lexical"][0].get("cars", 0.0)
    gain = learned["cars"].score - plain["cars"]
    assert lexical_gain is None or gain > lexical_gain.score - lexical_before
    assert "proteins" not in learned and "speech" not in learned
