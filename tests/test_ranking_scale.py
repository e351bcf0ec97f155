"""The lexical ranker's chunked, threaded scoring gives exactly the unchunked results.

Speed and memory targets live in bench/rank_scale.py and docs/benchmarks.md, not here.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from digest.ranking import (
    Interest,
    LexicalIndex,
    LexicalRanker,
    Pick,
    Profile,
    RankDoc,
    Rated,
    lexical,
    lexical_chunk,
    lexical_kernel,
    lexical_plan,
)
from digest.ranking.base import Ranking
from digest.ranking.lexical_index import LexicalParams
from digest.ranking.lexical_plan import build_plan

DATA = Path(__file__).parent / "data" / "ranking"
PHRASES = [
    "reinforcement learning", "RL", "language models", "pre-training", "RLHF", "reasoning",
    "diffusion", "robot manipulation", "in-context learning", "self-supervised", "video",
    "LLM agents", "chain-of-thought", "reward model", "benchmark", "vision-language models",
    "protein folding", "speech recognition", "offline", "transformer",
]  # fmt: skip


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    papers = json.loads((DATA / "seed_papers.json").read_text(encoding="utf-8"))
    rng = random.Random(3)
    docs = [
        RankDoc(
            f"seed:{i}",
            p["title"],
            p["abstract"],
            authors=(rng.choice(["A. Smith", "B. Jones", "C. Wu"]),),
            categories=(rng.choice(["cs.LG", "cs.CL", "cs.RO"]),),
            upvotes=rng.choice([None, 0, 2, 30]),
        )
        for i, p in enumerate(papers)
    ]
    return LexicalRanker().prepare(docs)


def rated_papers() -> list[RankDoc]:
    """Papers a reader could have rated: some of the seed papers, the others invented."""
    papers = json.loads((DATA / "seed_papers.json").read_text(encoding="utf-8"))
    return [RankDoc(f"rated:{i}", p["title"], p["abstract"]) for i, p in enumerate(papers[::7])] + [
        RankDoc("rated:x", "Offline RL for robots", "Offline reinforcement learning on robots."),
        RankDoc("rated:y", "Protein folding", "Structure prediction for proteins."),
    ]


def profiles(n: int, seed: int = 11) -> list[Profile]:
    """Varied profiles: weights, exclusions, requirements, thresholds, authors, categories,
    the popularity prior, ratings, and profiles with nothing that can match."""
    rng = random.Random(seed)
    rateable = rated_papers()
    out = []
    for i in range(n):
        interests = [
            Interest(rng.choice(PHRASES), rng.choice([1.0, 2.0, 0.5]))
            for _ in range(rng.randint(0, 5))
        ]
        if i % 9 == 0:
            interests.append(Interest("Smith", 1.0, "author"))
        if i % 11 == 0:
            interests.append(Interest("cs.RO", 0.5, "category"))
        rated = ()
        if i % 5 == 0:
            rated = tuple(
                Rated(paper, rng.choice([1, 1, -1]))
                for paper in rng.sample(rateable, rng.randint(1, 4))
            )
        out.append(
            Profile(
                tuple(interests),
                excludes=tuple(rng.sample(PHRASES, 2)) if i % 4 == 0 else (),
                required=(rng.choice(PHRASES),) if i % 13 == 0 else (),
                min_score=0.6 if i % 6 == 0 else None,
                popularity_weight=0.3 if i % 7 == 0 else 0.0,
                rated=rated,
            )
        )
    return out


def eligible_for(n_docs: int, n_profiles: int) -> np.ndarray:
    """A fixed mask with holes, as the pipeline's delivered papers and windows make."""
    rng = np.random.default_rng(5)
    return rng.random((n_profiles, n_docs)) > 0.15


def explained(results: list[list[Pick]]) -> list[list[tuple[object, ...]]]:
    return [
        [(p.index, p.score, tuple(
            (m.interest, m.fields, m.contribution, m.evidence, m.words) for m in p.matches
         )) for p in row]
        for row in results
    ]  # fmt: skip


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunk_size", [1, 3, 64, 333])
def test_chunked_equals_unchunked(index: LexicalIndex, chunk_size: int, threads: int) -> None:
    many = profiles(700)
    mask = eligible_for(len(index.docs), len(many))
    tops = [i % 12 for i in range(len(many))]

    def eligible(start: int, stop: int) -> np.ndarray:
        return mask[start:stop]

    whole = LexicalRanker(threads=1).rank(
        index, many, top_n=tops, eligible=eligible, chunk_size=len(many)
    )
    assert sum(map(len, whole)) > 1500  # the comparison is not vacuous
    assert any(len(p.matches) > 1 for row in whole for p in row)
    assert any(p.reason() == "popular" for row in whole for p in row)
    chunked = LexicalRanker(threads=threads).rank(
        index, many, top_n=tops, eligible=eligible, chunk_size=chunk_size
    )
    assert explained(chunked) == explained(whole)
    assert chunked == whole


def reference(
    index: LexicalIndex, many: list[Profile], top: int | list[int], mask: np.ndarray
) -> list:
    """The ranking rule written out plainly from the compiled plan, one profile at a time:
    Python loops and sorts over the plan's sparse rows, for the scores, the rated papers'
    likeness, the top and the explanations (one pass: no completion of short digests)."""
    tops = top if isinstance(top, list) else [top] * len(many)
    plan = build_plan(index, many)
    params = index.params
    contrib, likeness, votes = plan.contrib, plan.ratings.likeness, plan.ratings.votes

    def row(matrix: Any, i: int) -> list[tuple[int, float, int]]:  # (doc, value, position)
        a, b = int(matrix.indptr[i]), int(matrix.indptr[i + 1])
        docs, values = matrix.indices[a:b].tolist(), matrix.data[a:b].tolist()
        return list(zip(docs, values, range(a, b), strict=True))

    def graded(x: float) -> float:
        span = params.like_full - params.like_from
        return min(max((x - params.like_from) / span, 0.0), 1.0)

    def lifted(x: float, own: float) -> float:  # what likeness x adds to a paper scored own
        return params.like_weight * graded(x) / (1 + own / params.like_damp)

    banned = (plan.excl @ plan.excl_match).toarray() > 0
    have = (plan.req @ plan.req_match).toarray()
    bag_max = plan.bag_full
    out = []
    for p in range(len(many)):
        top = tops[p]
        entries = list(range(plan.weights.indptr[p], plan.weights.indptr[p + 1]))
        best: dict[int, float] = {}
        rest: dict[int, float] = {}
        for e in entries:  # the strongest interest, and the other substantial ones
            for d, c, _ in row(contrib, plan.weights.indices[e]):
                v = plan.weights.data[e] * c
                if d not in best:
                    best[d], rest[d] = v, 0.0
                elif v > best[d]:
                    rest[d] += best[d] if best[d] >= params.substantial else 0.0
                    best[d] = v
                elif v >= params.substantial:
                    rest[d] += v
        like: dict[int, float] = {}
        unlike: dict[int, float] = {}
        ratings = [] if plan.popular_only[p] else list(range(votes.indptr[p], votes.indptr[p + 1]))
        for e in ratings:
            for d, c, _ in row(likeness, votes.indices[e]):
                side = like if votes.data[e] > 0 else unlike
                side[d] = max(side.get(d, 0.0), c)
                if votes.data[e] > 0:
                    best.setdefault(d, 0.0)
                    rest.setdefault(d, 0.0)
        if plan.popular_only[p]:
            best = {int(d): 0.0 for d in np.flatnonzero(index.popularity > 0)}
            rest = dict.fromkeys(best, 0.0)
        weight = plan.popularity_weight[p]
        kept, extra = [], []
        interests: dict[int, float] = {}  # the interests' own score of each paper
        for d, own in best.items():
            score = own
            if rest[d] > 0:
                score += params.bonus * -math.expm1(-rest[d] / params.bonus)
            interests[d] = score
            if ratings and (d in like or d in unlike):
                score += lifted(like.get(d, 0.0), interests[d])
                if unlike.get(d, 0.0) > like.get(d, 0.0):  # else nearer a paper rated up
                    score -= params.dislike_weight * graded(unlike.get(d, 0.0))
            if score <= 0 and not plan.popular_only[p]:
                continue
            score = score + weight * index.popularity[d] if weight > 0 else score
            if (
                mask[p, d]
                and not banned[p, d]
                and not plan.blocked[p]
                and have[p, d] == plan.n_required[p]
                and score >= plan.threshold[p]
            ):
                if not (ratings and own == 0.0):
                    kept.append((-score, d))
                elif unlike.get(d, 0.0) < params.like_from:  # alike to no paper rated down
                    extra.append((-score, d))
        # Brought by likeness alone: max(1, top // 4), or the empty slots of a short digest.
        cap = min(plan.ratings.liked[p], max(1, top // 4, top - len(kept))) if ratings else 0
        ranked = sorted(kept + sorted(extra)[:cap])
        keywords = [e for e in entries if bag_max[plan.weights.indices[e]] > 0]
        if entries and params.bag_weight > 0:  # re-rank the best by whole-profile words
            block, after = ranked[: params.rerank_depth], ranked[params.rerank_depth :]
            scale = 1 + params.bag_spread * max(len(keywords) - 1, 0)
            rows = [plan.weights.indices[e] for e in keywords]
            words = {}
            for _, d in block:
                shares = [float(plan.bag[i, d]) / bag_max[i] for i in rows]
                largest = max(shares, default=0.0)
                words[d] = (largest + params.bag_spread * (sum(shares) - largest)) / scale
            block = sorted((negative - params.bag_weight * words[d], d) for negative, d in block)
            ranked = block + after
        picks = []
        for negative, d in ranked[:top]:
            found = []
            for e in entries:
                for doc, c, q in row(contrib, plan.weights.indices[e]):
                    if doc == d:
                        fields, evidence = lexical.explain(int(plan.fields[q]))
                        units = plan.unit_words[plan.weights.indices[e]]
                        said = (
                            tuple(w for k, w in enumerate(units) if plan.masks[q] >> k & 1)
                            if evidence == "partial"
                            else ()
                        )
                        match = (plan.texts[plan.spellings[e]], fields, c * plan.weights.data[e],
                                 evidence, said)  # fmt: skip
                        found.append((-match[2], plan.slots[e], match))
            for n, e in enumerate(ratings):
                if votes.data[e] > 0:
                    for doc, c, _ in row(likeness, votes.indices[e]):
                        if doc == d:
                            title = plan.ratings.titles[votes.indices[e]]
                            amount = lifted(c, interests[d])
                            if amount > 0:
                                match = (title, (), amount, "liked", ())
                                found.append((-amount, 1_000_000 + n, match))
            picks.append((d, -negative, tuple(m for _, _, m in sorted(found))))
        out.append(picks)
    return out


def completed(index: LexicalIndex, many: list[Profile], top: int, mask: np.ndarray) -> list:
    """The reference with short digests completed: a profile with at least one match (not
    counting papers its ratings alone brought) but fewer than ``top`` (and no
    ``min_score``) keeps its matches and the first ``max(1, top // 4)`` papers its ratings
    alone brought, then gets the next papers of a pass whose match floor is ``fill_floor``
    (asked for ``top`` more than it kept), no more brought by ratings alone than that cap
    allows unless nothing else fills the slot."""

    def alone(pick: tuple) -> bool:
        return bool(pick[2]) and all(m[3] == "liked" for m in pick[2])

    first = reference(index, many, top, mask)
    short = [
        0 < sum(not alone(x) for x in row) < top and profile.min_score is None
        for row, profile in zip(first, many, strict=True)
    ]
    caps = []
    for k, row in enumerate(first):
        cap = max(1, top // 4)
        if short[k]:
            owed = [x for x in row if alone(x)]
            row[:] = [x for x in row if not alone(x) or x in owed[:cap]]
            cap -= len(owed[:cap])
        caps.append(cap)
    weaker = dataclasses.replace(
        index, params=dataclasses.replace(index.params, floor=index.params.fill_floor)
    )
    more = reference(weaker, many, [top + len(row) for row in first], mask)
    for k, (row, extra) in enumerate(zip(first, more, strict=True)):
        if short[k]:
            have = {d for d, _, _ in row}
            fresh = [x for x in extra if x[0] not in have]
            cap, room, later = caps[k], top - len(row), []
            for pick in fresh:
                if room == 0:
                    break
                if alone(pick) and cap == 0:
                    later.append(pick)
                    continue
                cap -= alone(pick)
                row.append(pick)
                room -= 1
            row.extend(later[:room])
    return first


def test_compiled_kernel_follows_the_plain_rule(index: LexicalIndex) -> None:
    many = profiles(400, seed=23)
    mask = eligible_for(len(index.docs), len(many))
    ranked = LexicalRanker().rank(
        index, many, top_n=9, eligible=lambda a, b: mask[a:b], chunk_size=128
    )
    expected = completed(index, many, 9, mask)
    assert sum(map(len, expected)) > 1000
    # Some digests were completed, and each completion differs from the one-pass rule.
    plain = reference(index, many, 9, mask)
    assert sum(map(len, plain)) < sum(map(len, expected))
    assert explained(ranked) == expected


def test_uncompiled_kernel_gives_the_compiled_results(
    index: LexicalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's Python source, run by the interpreter, gives what Numba compiled."""
    many = profiles(60, seed=29)
    compiled = LexicalRanker().rank(index, many, top_n=6, chunk_size=25)
    monkeypatch.setattr(lexical_chunk, "kernel", lambda: lexical_kernel.rank_rows)
    interpreted = LexicalRanker().rank(index, many, top_n=6, chunk_size=25)
    assert sum(map(len, compiled)) > 100
    assert explained(interpreted) == explained(compiled)


def test_dense_and_searched_word_lookups_agree(
    index: LexicalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-ranking reads the interests' word scores from a dense table when it is small
    enough, else by binary search in the sparse rows: the same values either way."""
    many = profiles(300)
    dense = LexicalRanker().rank(index, many, top_n=8, chunk_size=50)
    monkeypatch.setattr(lexical_chunk, "DENSE_BAG", 0)  # a size knob, not the logic
    searched = LexicalRanker().rank(index, many, top_n=8, chunk_size=50)
    assert sum(map(len, dense)) > 1000
    assert explained(searched) == explained(dense)


def test_matches_shared_per_run_or_per_chunk_agree(
    index: LexicalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    many = profiles(300)
    shared = LexicalRanker().rank(index, many, top_n=8, chunk_size=50)
    matches = [m for row in shared for p in row for m in p.matches]
    assert len({id(m) for m in matches}) < len(matches)  # one object per (interest, paper)
    monkeypatch.setattr(lexical, "MATCH_CACHE", 0)  # a size knob, not the logic
    per_chunk = LexicalRanker().rank(index, many, top_n=8, chunk_size=50)
    assert explained(per_chunk) == explained(shared)


def test_top_n_is_a_prefix_of_the_full_ranking(index: LexicalIndex) -> None:
    """Broad profiles (dozens of candidates each) and varied ``top_n``: the kept buffer of
    the best n must be exactly the head of the whole ranking."""
    words = ("language models", "data", "training", "performance", "tasks", "reasoning")
    broad = [Profile(tuple(Interest(w) for w in words[i % 3 :])) for i in range(30)]
    many = broad + profiles(200)
    tops = [1 + i % 5 for i in range(len(many))]
    cut = LexicalRanker().rank(index, many, top_n=tops, chunk_size=64)
    full = LexicalRanker().rank(index, many, top_n=len(index.docs), chunk_size=64)
    assert max(map(len, full)) > 50
    assert explained(cut) == explained([row[:n] for row, n in zip(full, tops, strict=True)])


def test_eligible_is_called_in_order_once_per_chunk(index: LexicalIndex) -> None:
    calls: list[tuple[int, int]] = []

    def eligible(start: int, stop: int) -> np.ndarray:
        calls.append((start, stop))
        return np.ones((stop - start, len(index.docs)), dtype=bool)

    LexicalRanker(threads=2).rank(index, profiles(50), top_n=5, eligible=eligible, chunk_size=8)
    assert calls == [(s, min(s + 8, 50)) for s in range(0, 50, 8)]


def test_worker_errors_reach_the_caller(index: LexicalIndex) -> None:
    def eligible(start: int, stop: int) -> np.ndarray:
        rows = stop - start if start < 16 else 1  # the third chunk is malformed
        return np.ones((rows, len(index.docs)), dtype=bool)

    with pytest.raises(ValueError, match=r"eligible\(16, 24\) has shape"):
        LexicalRanker(threads=2).rank(index, profiles(40), top_n=5, eligible=eligible, chunk_size=8)


def test_ties_and_excluded_top_papers_are_exact(index: LexicalIndex) -> None:
    """Many equal scores (same single interest), and the best papers excluded: the histogram
    cut must neither drop a tied paper nor let an excluded one through."""
    same = [Profile((Interest("language models"),)) for _ in range(40)]
    blocked = [Profile((Interest("language models"),), excludes=("reasoning",))] * 40
    top = LexicalRanker().rank(index, same + blocked, top_n=7, chunk_size=16)
    full = LexicalRanker().rank(index, same[:1], top_n=len(index.docs))[0]
    assert all(row == full[:7] for row in top[:40])
    allowed = [
        p
        for p in full
        if "reason"
        not in (index.docs[p.index].abstract.lower() + index.docs[p.index].title.lower())
    ]
    assert [p.index for p in top[40]] == [p.index for p in allowed[:7]]
    scores = [p.score for p in full]
    assert scores == sorted(scores, reverse=True)
    tied = [(a.index, b.index) for a, b in itertools.pairwise(full) if a.score == b.score]
    assert all(i < j for i, j in tied)


def test_threads_must_be_positive() -> None:
    with pytest.raises(ValueError, match="threads"):
        LexicalRanker(threads=0)


@pytest.mark.parametrize("floor", [LexicalParams().floor, LexicalParams().fill_floor])
def test_the_one_word_bound_prunes_only_what_cannot_match(
    index: LexicalIndex, floor: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Candidates are dropped before grading when even their best one-word-alone credit
    (partial x BM25F x the largest distinctive word share, squared) stays under the floor:
    the plan is the one the loose bound (share 1) gives, at the match floor and at the
    completion's."""
    at = dataclasses.replace(index, params=dataclasses.replace(index.params, floor=floor))
    many = profiles(300, seed=31)
    tight = build_plan(at, many)
    monkeypatch.setattr(lexical_plan, "_alone_bound", lambda c: 1.0)
    loose = build_plan(at, many)
    assert tight.contrib.nnz > 300
    assert (tight.contrib != loose.contrib).nnz == 0
    assert np.array_equal(tight.fields, loose.fields)
    assert np.array_equal(tight.masks, loose.masks)


@pytest.mark.parametrize("cache", [lexical.MATCH_CACHE, 0])
def test_ranking_arrays_hold_the_picks(
    index: LexicalIndex, cache: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ranking`` gives what ``rank`` gives, as arrays; ``Ranking.of`` makes the same
    arrays from picks as objects (a ranker without arrays)."""
    monkeypatch.setattr(lexical, "MATCH_CACHE", cache)  # a size knob, not the logic
    many = profiles(300)
    ranking = LexicalRanker().ranking(index, many, top_n=8, chunk_size=50)
    ranked = LexicalRanker().rank(index, many, top_n=8, chunk_size=50)
    assert len(ranking) == len(many)
    assert [ranking.count(row) for row in range(len(many))] == list(map(len, ranked))
    assert sum(map(len, ranked)) > 1000
    assert explained([ranking.picks(row) for row in range(len(many))]) == explained(ranked)
    again = Ranking.of(ranked)
    assert explained(again.lists()) == explained(ranked)
    assert again.docs.tolist() == ranking.docs.tolist()
    assert again.bounds.tolist() == ranking.bounds.tolist()
    assert Ranking.empty(3).lists() == [[], [], []]


def test_replacing_rows_keeps_the_others_as_they_were(index: LexicalIndex) -> None:
    """``Ranking.replacing`` (how completed short digests go back into a run's arrays): the
    replaced profiles read their new picks, every other profile its own, at the first row,
    the last, neighbours and a row that becomes empty or was empty."""
    many = profiles(40)
    ranked = LexicalRanker().rank(index, many, top_n=6, chunk_size=16)
    ranking = Ranking.of(ranked)
    donors = [row for row in ranked if row]
    replaced = {0: donors[3][:2], 1: donors[5], 17: [], 39: donors[1][::-1]}
    empty = next(i for i, row in enumerate(ranked) if not row and i not in replaced)
    replaced[empty] = donors[2][:1]
    expected = [replaced.get(i, row) for i, row in enumerate(ranked)]
    assert explained(ranking.replacing(replaced).lists()) == explained(expected)
    assert ranking.replacing({}) is ranking
