"""Completing a short digest (LexicalParams.fill_floor): a profile with at least one match
but fewer than ``top`` gets, after its matches, papers with weaker evidence, explained as
what they are; a profile nothing matches stays empty."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from digest.ranking import LexicalIndex, LexicalRanker, Pick, build_profile
from digest.ranking.base import RankDoc
from digest.ranking.lexical_index import LexicalParams

DATA = Path(__file__).parent / "data" / "ranking"
MATCH_RULE = LexicalParams(fill_floor=math.inf)  # completion off


@pytest.fixture(scope="module")
def docs() -> list[RankDoc]:
    papers = json.loads((DATA / "seed_papers.json").read_text(encoding="utf-8"))
    return [RankDoc(f"seed:{i}", p["title"], p["abstract"]) for i, p in enumerate(papers)]


@pytest.fixture(scope="module")
def seeds(docs: list[RankDoc]) -> LexicalIndex:
    return LexicalRanker().prepare(docs)


@pytest.fixture(scope="module")
def matches_only(docs: list[RankDoc]) -> LexicalIndex:
    return LexicalRanker(params=MATCH_RULE).prepare(docs)


def ranked(index: LexicalIndex, *keywords: str, top: int = 5) -> list[Pick]:
    [picks] = LexicalRanker().rank(index, [build_profile(list(keywords))], top_n=top)
    return picks


def test_a_short_digest_is_completed_after_its_matches_and_says_partly(
    seeds: LexicalIndex, matches_only: LexicalIndex
) -> None:
    matches = ranked(matches_only, "diffusion policy")
    assert 0 < len(matches) < 5
    picks = ranked(seeds, "diffusion policy")
    assert len(picks) == 5
    assert picks[: len(matches)] == matches  # the matches first, unchanged
    for pick in picks[len(matches) :]:
        assert pick.index not in {m.index for m in matches}
        [match] = pick.matches
        # weaker evidence, said to be partial: "partly matched … (only “policy” …)"
        assert match.evidence == "partial" and match.words == ("policy",)
        assert pick.reason().startswith("partly matched “diffusion policy” (only “policy”")


def test_a_profile_nothing_matches_stays_empty(seeds: LexicalIndex, docs: list[RankDoc]) -> None:
    # Some papers hold part of "skill discovery", weakly; none matches it. An empty week
    # says so instead of being filled with weak evidence.
    weak = LexicalRanker(params=LexicalParams(floor=LexicalParams().fill_floor))
    assert ranked(weak.prepare(docs), "skill discovery")
    assert ranked(seeds, "skill discovery") == []


def test_a_full_digest_and_an_own_threshold_are_left_alone(
    seeds: LexicalIndex, matches_only: LexicalIndex
) -> None:
    profiles = [
        build_profile(["graph neural networks"]),  # 5 matches: full
        dataclasses.replace(build_profile(["diffusion policy"]), min_score=0.0),  # own threshold
    ]
    ranker = LexicalRanker()
    assert ranker.rank(seeds, profiles, top_n=5) == ranker.rank(matches_only, profiles, top_n=5)


def test_completion_keeps_eligibility_and_is_the_same_for_any_chunk(
    seeds: LexicalIndex, matches_only: LexicalIndex
) -> None:
    profiles = [build_profile(["diffusion policy"]), build_profile(["scaling laws"])] * 3
    completed = ranked(seeds, "diffusion policy")
    barred = completed[-1].index  # a completing paper, kept from the third profile
    mask = np.ones((len(profiles), len(seeds.docs)), dtype=bool)
    mask[2, barred] = False

    def eligible(start: int, stop: int) -> np.ndarray:
        return mask[start:stop]

    ranker = LexicalRanker()
    whole = ranker.rank(seeds, profiles, top_n=5, eligible=eligible, chunk_size=len(profiles))
    assert whole[0] == completed and len(whole[1]) == 5
    assert barred not in {p.index for p in whole[2]} and len(whole[2]) == 5
    for size in (1, 2, 4):
        assert ranker.rank(seeds, profiles, top_n=5, eligible=eligible, chunk_size=size) == whole
    assert LexicalRanker(threads=1).rank(seeds, profiles, top_n=5, eligible=eligible) == whole
