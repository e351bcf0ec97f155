"""The lexical ranker: BM25F over title and abstract, phrase-aware, all profiles at once.

How a paper is scored for a profile (details in :mod:`digest.ranking.lexical_index`):

- each interest that *matches* the paper adds ``weight * (1 - exp(-s / 3))`` where ``s`` is
  its BM25F score (idf-weighted, title counted 2.5 times, phrase credit for neighbouring
  words, scaled down when only some of its words occur or they are never close together).
  An interest matches when ``s >= 1.5``: roughly one mention of a word found in at most a
  fifth of the papers. A matching interest therefore adds between ``0.39 * weight`` and
  ``weight``; an author match adds ``0.81 * weight``, a category ``0.57 * weight``;
- with ``popularity_weight > 0`` the paper also gets
  ``popularity_weight * log1p(upvotes) / log1p(100)`` (100 upvotes add exactly the weight);
- the score of a paper no interest matches is zero: it is never picked, except for a
  profile with no interests and a popularity weight, which gets the most upvoted papers.

A paper is picked when at least one interest matches and, if the profile sets
``min_score``, the score (popularity included) reaches it; a paper matching an exclusion, or
missing a required phrase, is never picked. Ties are broken by paper index.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

from digest.ranking.analyzer import Analyzer
from digest.ranking.base import EligibleFn, Field, Match, Pick, Prepared, Profile, RankDoc
from digest.ranking.lexical_index import (
    LexicalIndex,
    LexicalParams,
    Matrix,
    build_index,
    positions,
)
from digest.ranking.lexical_plan import Plan, build_plan

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
# Explanation fields by code: keyword = title bit + 2 * abstract bit; author 4; category 5.
_FIELDS: tuple[tuple[Field, ...], ...] = (
    (),
    ("title",),
    ("abstract",),
    ("title", "abstract"),
    ("authors",),
    ("categories",),
)


class LexicalRanker:
    """Sparse BM25F ranker (see the module docstring for the score scale)."""

    name = "lexical"

    def __init__(
        self, *, params: LexicalParams | None = None, analyzer: Analyzer | None = None
    ) -> None:
        self.params = params or LexicalParams()
        self._analyzer = analyzer

    def prepare(self, docs: Sequence[RankDoc]) -> LexicalIndex:
        """Analyse the papers and build the BM25F feature matrix."""
        return build_index(docs, self._analyzer or Analyzer(), self.params)

    def rank(
        self,
        prepared: Prepared,
        profiles: Sequence[Profile],
        *,
        top_n: int | Sequence[int],
        eligible: EligibleFn | None = None,
        chunk_size: int = 2048,
    ) -> list[list[Pick]]:
        """Top picks per profile, best first; identical results for any ``chunk_size``."""
        if not isinstance(prepared, LexicalIndex):
            raise TypeError(f"LexicalRanker cannot rank {type(prepared).__name__}")
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        tops = _top_counts(top_n, len(profiles))
        with _gc_paused():
            return self._rank(prepared, profiles, tops, eligible, chunk_size)

    def _rank(
        self,
        prepared: LexicalIndex,
        profiles: Sequence[Profile],
        tops: IntArray,
        eligible: EligibleFn | None,
        chunk_size: int,
    ) -> list[list[Pick]]:
        plan = build_plan(prepared, profiles)
        results: list[list[Pick]] = []
        for start in range(0, len(profiles), chunk_size):
            stop = min(start + chunk_size, len(profiles))
            mask = None
            if eligible is not None:
                mask = np.asarray(eligible(start, stop), dtype=np.bool_)
                if mask.shape != (stop - start, len(prepared.docs)):
                    raise ValueError(f"eligible({start}, {stop}) has shape {mask.shape}")
            rows, cols, vals = _candidates(prepared, plan, start, stop, mask)
            rows, cols, vals = _top(rows, cols, vals, tops[start:stop])
            results.extend(_picks(prepared, plan, start, stop, rows, cols, vals))
        return results


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Ranking allocates about a million small objects (picks, matches) and no reference
    cycles; the cyclic collector would rescan them over and over (a third of the run time
    at 100,000 profiles). Paused for the call, restored after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _top_counts(top_n: int | Sequence[int], n: int) -> IntArray:
    tops = (
        np.full(n, top_n, dtype=np.int64)
        if isinstance(top_n, int)
        else np.asarray(top_n, dtype=np.int64)
    )
    if tops.shape != (n,) or (tops < 0).any():
        raise ValueError("top_n must be an int >= 0 or one such int per profile")
    return tops


def _candidates(
    index: LexicalIndex, plan: Plan, start: int, stop: int, mask: npt.NDArray[np.bool_] | None
) -> tuple[IntArray, IntArray, FloatArray]:
    """Every (profile row, paper, score) of the chunk that may be picked."""
    scores: Matrix = plan.weights[start:stop] @ plan.contrib
    rows = np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(scores.indptr))
    cols = scores.indices.astype(np.int64, copy=False)
    vals = scores.data.astype(np.float64, copy=False)
    popular = np.flatnonzero(plan.popular_only[start:stop])
    if popular.size:
        docs = np.flatnonzero(index.popularity > 0)
        rows = np.concatenate([rows, np.repeat(popular, docs.size)])
        cols = np.concatenate([cols, np.tile(docs, popular.size)])
        vals = np.concatenate([vals, np.zeros(popular.size * docs.size)])
    # Per-profile settings are rare; each costs a pass over the candidates only when used.
    weight = plan.popularity_weight[start:stop]
    if (weight > 0).any():
        vals = vals + weight[rows] * index.popularity[cols]
    keep = np.ones(rows.size, dtype=np.bool_)
    threshold = plan.threshold[start:stop]
    if np.isfinite(threshold).any():
        keep &= vals >= threshold[rows]
    if plan.blocked[start:stop].any():
        keep &= ~plan.blocked[start:stop][rows]
    if mask is not None:
        keep &= mask[rows, cols]
    # Exclusions and requirements: only the rows of profiles that have them are looked up.
    for profile_rows, matches, required in (
        (plan.excl, plan.excl_match, False),
        (plan.req, plan.req_match, True),
    ):
        chunk = profile_rows[start:stop]
        if not chunk.nnz:
            continue
        found: Matrix = chunk @ matches
        found.sort_indices()
        sel = np.flatnonzero(keep & (np.diff(chunk.indptr) > 0)[rows])
        pos = positions(found, rows[sel], cols[sel])
        if required:
            count = np.where(pos >= 0, found.data[pos], 0.0)
            keep[sel] = count == plan.n_required[start + rows[sel]]
        else:
            keep[sel] = pos < 0
    return rows[keep], cols[keep], vals[keep]


def _top(
    rows: IntArray, cols: IntArray, vals: FloatArray, tops: IntArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """The best ``tops[row]`` entries of each row: score descending, then paper index."""
    if rows.size > 4 * int(tops.sum()) and vals.max() > vals.min():
        rows, cols, vals = _prefilter(rows, cols, vals, tops)
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=tops.size)
    rank = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = rank < tops[rows]
    return rows[keep], cols[keep], vals[keep]


def _prefilter(
    rows: IntArray, cols: IntArray, vals: FloatArray, tops: IntArray
) -> tuple[IntArray, IntArray, FloatArray]:
    """Drop entries that cannot be in their row's top, without sorting: a histogram of
    each row's scores tells the lowest bucket the row's ``top``-th best entry can be in."""
    buckets = 64
    low, high = float(vals.min()), float(vals.max())
    bucket = np.minimum(((vals - low) * (buckets / (high - low))).astype(np.int64), buckets - 1)
    hist = np.bincount(rows * buckets + bucket, minlength=tops.size * buckets)
    above = np.cumsum(hist.reshape(tops.size, buckets)[:, ::-1], axis=1)
    enough = above >= np.maximum(tops, 1)[:, None]
    cut = np.where(enough[:, -1], buckets - 1 - np.argmax(enough, axis=1), 0)
    keep = bucket >= cut[rows]
    return rows[keep], cols[keep], vals[keep]


def _picks(
    index: LexicalIndex,
    plan: Plan,
    start: int,
    stop: int,
    rows: IntArray,
    cols: IntArray,
    vals: FloatArray,
) -> list[list[Pick]]:
    """Build picks with their explanations; only the picked pairs are examined."""
    first = plan.weights.indptr[start + rows]
    count = plan.weights.indptr[start + rows + 1] - first
    pick = np.repeat(np.arange(rows.size), count)
    entry = np.arange(pick.size) - np.repeat(np.cumsum(count) - count, count) + first[pick]
    pos = positions(plan.contrib, plan.weights.indices[entry].astype(np.int64), cols[pick])
    hit = pos >= 0
    pick, entry, pos = pick[hit], entry[hit], pos[hit]
    amount = plan.contrib.data[pos] * plan.weights.data[entry]
    order = np.lexsort((plan.slots[entry], -amount, pick))
    pick, entry, pos, amount = pick[order], entry[order], pos[order], amount[order]
    # Profiles share interests: build each distinct (interest, weight, paper) Match once.
    key = plan.labels[entry] * len(index.docs) + cols[pick]
    _, firsts, inverse = np.unique(key, return_index=True, return_inverse=True)
    texts = plan.texts
    made = list(
        map(
            Match,
            [texts[t] for t in plan.spellings[entry[firsts]].tolist()],
            [_FIELDS[c] for c in plan.fields[pos[firsts]].tolist()],
            amount[firsts].tolist(),
        )
    )
    matches = [made[i] for i in inverse.ravel().tolist()]
    bounds = np.searchsorted(pick, np.arange(rows.size + 1)).tolist()
    explained = [tuple(matches[a:b]) for a, b in itertools.pairwise(bounds)]
    picks = list(map(Pick, cols.tolist(), vals.tolist(), explained))
    edges = np.searchsorted(rows, np.arange(stop - start + 1)).tolist()
    return [picks[a:b] for a, b in itertools.pairwise(edges)]
