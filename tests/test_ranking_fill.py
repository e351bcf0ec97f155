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

from digest.ranking import LexicalIndex, LexicalRanker, Pick, Profile, Rated, build_profile
from digest.ranking.base import RankDoc
from digest.ranking.lexical_index import LexicalParams
from digest.ranking.lexical_plan import build_plan

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
        build_profile(["reinforcement learning"]),  # more than 5 matches: full
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


# The reader's ratings and the completion pass (a short digest of "diffusion policy" in the
# seed papers: three matches, then papers holding only "policy").
DIFFUSION = build_profile(["diffusion policy"])


def rated_copy(docs: list[RankDoc], i: int, vote: int, tag: str = "") -> Rated:
    """Seed paper ``i`` as a paper the reader rated last week (another key, same text)."""
    return Rated(RankDoc(f"rated:{i}{tag}", docs[i].title, docs[i].abstract), vote)


def with_votes(profile: Profile, *votes: Rated) -> Profile:
    return dataclasses.replace(profile, rated=votes)


def test_a_paper_rated_down_is_taken_down_in_the_completion_pass_too(
    seeds: LexicalIndex, docs: list[RankDoc]
) -> None:
    plain = ranked(seeds, "diffusion policy", top=len(docs))
    completing = [p for p in plain if p.matches[0].evidence == "partial"]
    first = completing[0]  # the first paper completing the five-paper digest
    assert first in ranked(seeds, "diffusion policy")
    vote = rated_copy(docs, first.index, -1)
    profile = with_votes(DIFFUSION, vote)
    [top5] = LexicalRanker().rank(seeds, [profile], top_n=5)
    assert first.index not in {p.index for p in top5}
    assert len(top5) == 5 and all(p.matches[0].evidence == "partial" for p in top5[3:])
    # Its interest evidence (a partial match, worth less than the penalty before the
    # whole-profile re-ranking) is outweighed: it is no longer a candidate at all.
    [everything] = LexicalRanker().rank(seeds, [profile], top_n=len(docs))
    assert first.index not in {p.index for p in everything}
    params = seeds.params
    alike = build_plan(seeds, [profile]).ratings.likeness.toarray()[0, first.index]
    graded = min(max((alike - params.like_from) / (params.like_full - params.like_from), 0), 1)
    [evidence] = first.matches
    assert 0 < evidence.contribution < params.dislike_weight * graded
    # The rest of the completion is unchanged: the same papers, in the same order.
    assert [p.index for p in everything] == [p.index for p in plain if p.index != first.index]


def test_exclusions_win_over_a_rating_up_in_the_completion_pass(
    seeds: LexicalIndex, docs: list[RankDoc]
) -> None:
    excluding = build_profile(["diffusion policy"], excludes=["offline"])
    offline = [i for i, d in enumerate(docs) if "offline" in (d.title + d.abstract).lower()]
    completing = {p.index for p in ranked(seeds, "diffusion policy", top=len(docs))}
    assert set(offline) & completing  # they would complete the digest but for the exclusion
    profile = with_votes(excluding, *(rated_copy(docs, i, 1) for i in offline))
    [picks] = LexicalRanker().rank(seeds, [profile], top_n=len(docs))
    assert len(picks) > 5 and not {p.index for p in picks} & set(offline)


def test_likeness_alone_fills_only_the_slots_completion_leaves_empty(
    seeds: LexicalIndex, matches_only: LexicalIndex, docs: list[RankDoc]
) -> None:
    """Three papers no interest says anything about are rated up. Without completion they
    fill the short digest's empty slots (at most one per paper rated up); with it, one of
    them keeps its place (``max(1, top // 4)``, as in a full digest) and the papers the
    interest partly matches take the rest; with room to spare they all come after those."""
    unrelated = [35, 61, 65]  # speech analysis, ape detection, protein modelling
    assert not {p.index for p in ranked(seeds, "diffusion policy", top=len(docs))} & set(unrelated)
    profile = with_votes(DIFFUSION, *(rated_copy(docs, i, 1) for i in unrelated))

    def alone(pick: Pick) -> bool:
        return all(m.evidence == "liked" for m in pick.matches)

    [before] = LexicalRanker(params=MATCH_RULE).rank(matches_only, [profile], top_n=5)
    assert [alone(p) for p in before] == [False] * 3 + [True] * 2
    [picks] = LexicalRanker().rank(seeds, [profile], top_n=5)
    assert [alone(p) for p in picks] == [False] * 3 + [True, False]
    assert picks[:4] == before[:4]  # the matches and the best paper brought by likeness
    assert picks[3].reason().startswith("like “")
    assert picks[3].reason().endswith("that you rated up")
    assert picks[4].reason().startswith("partly matched “diffusion policy” (only “policy”")
    # When the weaker evidence runs out (here all but two such papers are barred), the
    # slots it leaves empty go to the others likeness alone brings: top 8, cap 2.
    partial = [p.index for p in ranked(seeds, "diffusion policy", top=len(docs))][3:]
    mask = np.ones((1, len(docs)), dtype=bool)
    mask[0, partial[2:]] = False
    [few] = LexicalRanker().rank(seeds, [profile], top_n=8, eligible=lambda a, b: mask[a:b])
    assert [alone(p) for p in few] == [False] * 3 + [True] * 2 + [False] * 2 + [True]
    assert {p.index for p in few if alone(p)} == set(unrelated)


def test_a_paper_as_like_one_rated_up_as_one_rated_down_is_not_taken_down(
    seeds: LexicalIndex, docs: list[RankDoc]
) -> None:
    first = next(p for p in ranked(seeds, "diffusion policy") if p.matches[0].evidence == "partial")
    up = rated_copy(docs, first.index, 1)
    down = rated_copy(docs, first.index, -1, tag="b")  # the same text, rated down too
    [liked] = LexicalRanker().rank(seeds, [with_votes(DIFFUSION, up)], top_n=5)
    [both] = LexicalRanker().rank(seeds, [with_votes(DIFFUSION, up, down)], top_n=5)
    # The same papers in the same order. Alike to a paper rated down, it is no longer
    # brought by its likeness alone in the first pass: completion brings it, for the
    # interest's partial evidence and its likeness, and says both.
    assert [p.index for p in both] == [p.index for p in liked]
    assert {m.evidence for p in both if p.index == first.index for m in p.matches} == {
        "liked",
        "partial",
    }
    [lifted] = [p for p in both if p.index == first.index]
    assert lifted.score > first.score
    assert any(m.evidence == "liked" for m in lifted.matches)
    assert lifted.reason().endswith("that you rated up")
    # The down-vote alone would have taken it out: it is the up-vote, as near, that wins.
    [down_only] = LexicalRanker().rank(seeds, [with_votes(DIFFUSION, down)], top_n=5)
    assert first.index not in {p.index for p in down_only}


def test_ratings_alone_do_not_make_a_digest_nothing_matches_completed(
    seeds: LexicalIndex, docs: list[RankDoc]
) -> None:
    assert ranked(seeds, "skill discovery") == []
    profile = with_votes(build_profile(["skill discovery"]), rated_copy(docs, 61, 1))
    [picks] = LexicalRanker().rank(seeds, [profile], top_n=5)
    assert picks and all(m.evidence == "liked" for p in picks for m in p.matches)
