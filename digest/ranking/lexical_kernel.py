"""The lexical ranker's inner loop, compiled with Numba: one pass per profile, no temporaries.

For each profile of a chunk it accumulates the profile's interest rows of the run's
interest x paper contributions into a dense score per paper (in the order a sparse matrix
product adds them, so the sums are bit-identical to ``weights @ contrib``), drops what may
not be picked (the caller's eligibility mask, exclusions, missing required phrases, the
profile's ``min_score``), keeps the best ``top`` in a small sorted buffer (score descending,
then paper index), and looks up, for each pick, which of the profile's interests explain it.

Written as plain typed Python and compiled on first use (:func:`kernel`); the compiled code
is cached on disk by Numba, so later processes load it instead of compiling again. Plain
Python runs it too, which the tests use to check the compiled code against the source.

Why compiled: the same work as whole-array NumPy operations takes a dozen passes over the
~36 million (profile, paper) candidates of 100,000 profiles (sparse product, masks, two
histogram cuts, sorts), 1.7 s; this loop touches each candidate once (docs/benchmarks.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from digest.config.jit import njit_cached

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


class Csr(NamedTuple):
    """A CSR matrix's arrays in the kernel's dtypes (int64 row pointers, int32 columns)."""

    indptr: IntArray
    indices: Int32Array
    data: FloatArray

    @classmethod
    def of(cls, matrix: Any) -> Csr:  # scipy.sparse ships no types
        """The arrays of a CSR matrix with sorted indices (copies only to change dtype)."""
        return cls(
            np.ascontiguousarray(matrix.indptr, dtype=np.int64),
            np.ascontiguousarray(matrix.indices, dtype=np.int32),
            np.ascontiguousarray(matrix.data, dtype=np.float64),
        )


class KernelOut(NamedTuple):
    """What :func:`rank_rows` returns for one chunk (arrays sized for the worst case, the
    first ``n_picks`` / ``n_matches`` entries used)."""

    row_bounds: IntArray  # picks of chunk row r are [row_bounds[r], row_bounds[r + 1])
    cols: IntArray  # paper of each pick
    vals: FloatArray  # score of each pick
    match_bounds: IntArray  # matches of pick i are [match_bounds[i], match_bounds[i + 1])
    # Position in weights.data of the matching (profile, interest); for a paper rated up,
    # -1 - its position in votes.data.
    match_entry: IntArray
    match_pos: IntArray  # position in contrib.data (likeness.data) of the contribution
    match_amount: FloatArray  # weight * contribution


class Knobs(NamedTuple):
    """The ranker's scalar settings the kernel reads (see LexicalParams)."""

    bag_weight: float
    depth: int
    bonus: float
    substantial: float
    bag_spread: float
    like_weight: float
    dislike_weight: float
    like_from: float
    like_full: float
    like_damp: float


def rank_rows(  # noqa: PLR0912, PLR0915  # one loop on purpose: module docstring
    start: int,
    stop: int,
    n_docs: int,
    tops: IntArray,
    weights: Csr,
    slots: IntArray,
    contrib: Csr,
    excl: Csr,
    excl_match: Csr,
    req: Csr,
    req_match: Csr,
    n_required: IntArray,
    blocked: BoolArray,
    allowed: BoolArray,
    threshold: FloatArray,
    popularity_weight: FloatArray,
    popularity: FloatArray,
    popular_only: BoolArray,
    bag_indptr: IntArray,
    bag_indices: Int32Array,
    bag_data: Float32Array,
    bag_dense: Float32Array,
    bag_max: FloatArray,
    votes: Csr,
    likeness: Csr,
    liked: IntArray,
    knobs: Knobs,
) -> KernelOut:
    """The picks of profiles ``[start, stop)`` and their explanations.

    A paper's score for a profile is its strongest interest's weighted contribution, plus
    ``bonus * (1 - exp(-rest / bonus))`` where ``rest`` sums the other interests that are
    substantial (each at least ``substantial``): one interest squarely met beats several
    mentioned in passing. Ratings add ``like_weight`` times the likeness to the closest
    paper rated up, divided by ``1 + v / like_damp`` where ``v`` is what the interests give
    the paper (so a strong match moves little), and take ``dislike_weight`` times that to
    the closest rated down unless a paper rated up is at least as alike; papers only the
    likeness brings, if alike to no paper rated down (likeness under ``like_from`` to
    each), are kept apart and at most ``min(liked, max(1, top // 4))`` of them join the
    top, or, in a digest with fewer than ``top`` matches, as many as fill its empty
    slots, never more than ``liked`` (see
    :mod:`digest.ranking.lexical_feedback`).

    ``allowed`` is the chunk's rows x papers eligibility, or an empty (0, 0) array when
    every paper may be picked. With ``bag_weight > 0`` the best ``depth`` are re-ranked by
    adding ``bag_weight`` times their whole-profile word evidence in [0, 1]: each interest's
    word score relative to its full score (plan.bag_full), the largest counted whole, others at
    ``bag_spread`` (``bag``: interests x papers, as CSR arrays and, when small enough, the
    same values as a dense table; see :mod:`digest.ranking.lexical`)."""
    rows = stop - start
    use_mask = allowed.shape[0] > 0
    use_dense_bag = bag_dense.shape[0] > 0
    bag_weight = knobs.bag_weight
    depth = knobs.depth
    # Worst-case sizes: every row fills its top; every pick matches all its interests and
    # its rated papers.
    max_picks = 0
    max_matches = 0
    max_row = 0
    for p in range(start, stop):
        k = min(tops[p], n_docs)
        width = weights.indptr[p + 1] - weights.indptr[p] + votes.indptr[p + 1] - votes.indptr[p]
        max_picks += k
        max_matches += k * width
        max_row = max(max_row, k * width)
    row_bounds = np.zeros(rows + 1, dtype=np.int64)
    cols = np.empty(max_picks, dtype=np.int64)
    vals = np.empty(max_picks, dtype=np.float64)
    match_bounds = np.zeros(max_picks + 1, dtype=np.int64)
    match_entry = np.empty(max_matches, dtype=np.int64)
    match_pos = np.empty(max_matches, dtype=np.int64)
    match_amount = np.empty(max_matches, dtype=np.float64)
    # Per-paper scratch, reset by stamping with the row number instead of clearing.
    best = np.zeros(n_docs, dtype=np.float64)  # strongest interest's contribution
    rest = np.zeros(n_docs, dtype=np.float64)  # the other substantial ones, summed
    seen = np.zeros(n_docs, dtype=np.int64)  # == stamp: best[d] and rest[d] hold this row's
    like = np.zeros(n_docs, dtype=np.float64)  # likeness to the closest paper rated up
    unlike = np.zeros(n_docs, dtype=np.float64)  # ... and rated down
    rated = np.zeros(n_docs, dtype=np.int64)  # == stamp: like[d] and unlike[d] hold this row's
    banned = np.zeros(n_docs, dtype=np.int64)  # == stamp: an exclusion matches d
    found = np.zeros(n_docs, dtype=np.int64)  # required phrases d has (valid if seen_req)
    seen_req = np.zeros(n_docs, dtype=np.int64)
    touched = np.empty(n_docs, dtype=np.int64)
    top_doc = np.empty(n_docs, dtype=np.int64)
    top_val = np.empty(n_docs, dtype=np.float64)
    extra_doc = np.empty(n_docs, dtype=np.int64)  # papers only the ratings bring
    extra_val = np.empty(n_docs, dtype=np.float64)
    words = np.empty(n_docs, dtype=np.float64)  # whole-profile word score of each kept paper
    picked = np.zeros(n_docs, dtype=np.int64)  # == stamp: d is one of this row's picks
    pick_of = np.empty(n_docs, dtype=np.int64)
    n_found = np.empty(n_docs, dtype=np.int64)
    buf_entry = np.empty(max_row, dtype=np.int64)
    buf_pos = np.empty(max_row, dtype=np.int64)
    buf_amount = np.empty(max_row, dtype=np.float64)
    buf_slot = np.empty(max_row, dtype=np.int64)
    n_picks = 0
    n_matches = 0
    for r in range(rows):
        p = start + r
        stamp = r + 1
        k = min(tops[p], n_docs)
        if k <= 0 or blocked[p]:
            row_bounds[r + 1] = n_picks
            continue
        for e in range(excl.indptr[p], excl.indptr[p + 1]):
            x = excl.indices[e]
            for q in range(excl_match.indptr[x], excl_match.indptr[x + 1]):
                banned[excl_match.indices[q]] = stamp
        needs = n_required[p]
        if needs > 0:
            for e in range(req.indptr[p], req.indptr[p + 1]):
                x = req.indices[e]
                for q in range(req_match.indptr[x], req_match.indptr[x + 1]):
                    d = req_match.indices[q]
                    if seen_req[d] != stamp:
                        seen_req[d] = stamp
                        found[d] = 0
                    found[d] += 1
        # Scores: the strongest interest, and the sum of the other substantial ones.
        n_touched = 0
        w_begin, w_end = weights.indptr[p], weights.indptr[p + 1]
        for e in range(w_begin, w_end):
            i = weights.indices[e]
            w = weights.data[e]
            for q in range(contrib.indptr[i], contrib.indptr[i + 1]):
                d = contrib.indices[q]
                v = w * contrib.data[q]
                if seen[d] != stamp:
                    seen[d] = stamp
                    best[d] = v
                    rest[d] = 0.0
                    touched[n_touched] = d
                    n_touched += 1
                elif v > best[d]:
                    if best[d] >= knobs.substantial:
                        rest[d] += best[d]
                    best[d] = v
                elif v >= knobs.substantial:
                    rest[d] += v
        v_begin, v_end = votes.indptr[p], votes.indptr[p + 1]
        if popular_only[p]:  # nothing to learn against: ranked by upvotes alone
            v_end = v_begin
        cap = 0
        if v_end > v_begin:  # the reader's ratings: closest paper rated up, and down
            cap = min(liked[p], max(1, k // 4))
            for e in range(v_begin, v_end):
                x = votes.indices[e]
                up = votes.data[e] > 0
                for q in range(likeness.indptr[x], likeness.indptr[x + 1]):
                    d = likeness.indices[q]
                    c = likeness.data[q]
                    if rated[d] != stamp:
                        rated[d] = stamp
                        like[d] = 0.0
                        unlike[d] = 0.0
                    if up:
                        like[d] = max(like[d], c)
                        if seen[d] != stamp:  # a candidate for its likeness alone
                            seen[d] = stamp
                            best[d] = 0.0
                            rest[d] = 0.0
                            touched[n_touched] = d
                            n_touched += 1
                    else:
                        unlike[d] = max(unlike[d], c)
        pw = popularity_weight[p]
        if popular_only[p]:  # no interests, only the upvote prior: every upvoted paper
            n_touched = 0
            for d in range(n_docs):
                if popularity[d] > 0:
                    seen[d] = stamp
                    best[d] = 0.0
                    rest[d] = 0.0
                    touched[n_touched] = d
                    n_touched += 1
        # The best ``keep`` (k, or the re-ranking depth), kept sorted: score descending,
        # then paper index ascending; papers only the ratings bring, best ``cap`` apart.
        rerank = bag_weight > 0 and w_end > w_begin
        keep = min(max(k, depth), n_docs) if rerank else k
        n_top = 0
        limit = threshold[p]
        has_ratings = v_end > v_begin
        span = knobs.like_full - knobs.like_from
        bonus = knobs.bonus
        n_alone = 0
        for t in range(n_touched):
            d = touched[t]
            v = best[d]
            if rest[d] > 0.0 and bonus > 0.0:
                v += bonus * -math.expm1(-rest[d] / bonus)
            if has_ratings and rated[d] == stamp:
                up_part = min(max((like[d] - knobs.like_from) / span, 0.0), 1.0)
                down_part = min(max((unlike[d] - knobs.like_from) / span, 0.0), 1.0)
                if like[d] >= unlike[d]:  # closer to a paper rated up: not taken down
                    down_part = 0.0
                # The stronger the interests' own evidence ``v``, the less a likeness adds.
                damp = 1.0 + v / knobs.like_damp if knobs.like_damp > 0.0 else 1.0
                v += knobs.like_weight * up_part / damp
                v -= knobs.dislike_weight * down_part
                # Brought by likeness alone: ranked apart, below. Not when it is alike to
                # a paper rated down too: no interest vouches for it, and a "no" is near.
                if best[d] == 0.0:
                    if cap > 0 and v > 0.0 and unlike[d] < knobs.like_from:
                        extra_doc[n_alone] = d
                        extra_val[n_alone] = v
                        n_alone += 1
                    continue
            if v <= 0.0 and not popular_only[p]:
                continue
            if pw > 0:
                v = v + pw * popularity[d]
            # Cheapest test first: most candidates cannot beat the current k-th best.
            last = keep - 1
            if n_top == keep and (v < top_val[last] or (v == top_val[last] and d > top_doc[last])):
                continue
            if v < limit or banned[d] == stamp:
                continue
            if needs > 0 and (seen_req[d] != stamp or found[d] != needs):
                continue
            if use_mask and not allowed[r, d]:
                continue
            j = n_top if n_top < keep else keep - 1
            while j > 0 and (v > top_val[j - 1] or (v == top_val[j - 1] and d < top_doc[j - 1])):
                top_val[j] = top_val[j - 1]
                top_doc[j] = top_doc[j - 1]
                j -= 1
            top_val[j] = v
            top_doc[j] = d
            if n_top < keep:
                n_top += 1
        # The best ``cap`` of those brought by likeness alone, kept sorted the same way at
        # the head of extra_doc / extra_val, where they were listed: the head never grows
        # past the entry being read (n_extra <= a), so nothing unread is overwritten.
        n_extra = 0
        if n_alone > 0 and n_top < k:  # a short digest: its empty slots may be filled too
            cap = min(liked[p], max(cap, k - n_top))
        for a in range(n_alone):
            d = extra_doc[a]
            v = extra_val[a]
            if pw > 0:
                v = v + pw * popularity[d]
            if v < limit or banned[d] == stamp:
                continue
            if needs > 0 and (seen_req[d] != stamp or found[d] != needs):
                continue
            if use_mask and not allowed[r, d]:
                continue
            last = cap - 1
            if n_extra == cap and (
                v < extra_val[last] or (v == extra_val[last] and d > extra_doc[last])
            ):
                continue
            j = n_extra if n_extra < cap else cap - 1
            while j > 0 and (
                v > extra_val[j - 1] or (v == extra_val[j - 1] and d < extra_doc[j - 1])
            ):
                extra_val[j] = extra_val[j - 1]
                extra_doc[j] = extra_doc[j - 1]
                j -= 1
            extra_val[j] = v
            extra_doc[j] = d
            if n_extra < cap:
                n_extra += 1
        for t in range(n_extra):  # merge the few brought by ratings alone
            v = extra_val[t]
            d = extra_doc[t]
            j = n_top
            while j > 0 and (v > top_val[j - 1] or (v == top_val[j - 1] and d < top_doc[j - 1])):
                top_val[j] = top_val[j - 1]
                top_doc[j] = top_doc[j - 1]
                j -= 1
            top_val[j] = v
            top_doc[j] = d
            n_top += 1
        if rerank and n_top > 0:
            # Whole-profile word evidence of the best ``depth``: per interest its word score
            # relative to its full score (binary search of the paper in each row), the
            # largest counted whole, the others at bag_spread. Papers after them keep
            # their score, which no re-ranked one falls below: the order stays sorted and
            # the best n are the head of the best n + 1.
            block = min(n_top, depth)
            n_bags = 0
            for e in range(w_begin, w_end):
                if bag_max[weights.indices[e]] > 0:
                    n_bags += 1
            scale = 1.0 + knobs.bag_spread * max(n_bags - 1, 0)
            for t in range(block):
                d = top_doc[t]
                largest = 0.0
                total = 0.0
                for e in range(w_begin, w_end):
                    i = weights.indices[e]
                    if bag_max[i] <= 0:
                        continue
                    value = 0.0
                    if use_dense_bag:
                        value = float(bag_dense[i, d])  # in float64, compiled or not
                    else:
                        lo = bag_indptr[i]
                        hi = bag_indptr[i + 1]
                        while lo < hi:
                            mid = (lo + hi) >> 1
                            if bag_indices[mid] < d:
                                lo = mid + 1
                            else:
                                hi = mid
                        if lo < bag_indptr[i + 1] and bag_indices[lo] == d:
                            value = float(bag_data[lo])
                    share = value / bag_max[i]
                    total += share
                    largest = max(largest, share)
                words[t] = (largest + knobs.bag_spread * (total - largest)) / scale
            # Add each one's bonus, then sort the block again (insertion).
            for t in range(block):
                v = top_val[t] + bag_weight * words[t]
                d = top_doc[t]
                j = t
                while j > 0 and (
                    v > top_val[j - 1] or (v == top_val[j - 1] and d < top_doc[j - 1])
                ):
                    top_val[j] = top_val[j - 1]
                    top_doc[j] = top_doc[j - 1]
                    j -= 1
                top_val[j] = v
                top_doc[j] = d
        n_top = min(n_top, k)
        # Explanations: each interest of the profile whose contribution row holds a pick,
        # then each paper rated up whose likeness row does; best amount first, then the
        # order the profile lists them (rated papers after the interests). One more pass
        # over the same rows as the scores (sequential reads, no search per pick and
        # interest); pick t collects its matches in buf[t * width :], insertion-sorted.
        width = w_end - w_begin + v_end - v_begin
        for t in range(n_top):
            pick_of[top_doc[t]] = t
            picked[top_doc[t]] = stamp
            n_found[t] = 0
        for e in range(w_begin, v_end - v_begin + w_end):
            liked_row = e >= w_end
            if liked_row:
                x = votes.indices[e - w_end + v_begin]
                if votes.data[e - w_end + v_begin] <= 0:
                    continue
                q_begin, q_end = likeness.indptr[x], likeness.indptr[x + 1]
                slot = 1_000_000 + e - w_end
                entry = -1 - (e - w_end + v_begin)
            else:
                x = weights.indices[e]
                q_begin, q_end = contrib.indptr[x], contrib.indptr[x + 1]
                slot = slots[e]
                entry = e
            for q in range(q_begin, q_end):
                d = likeness.indices[q] if liked_row else contrib.indices[q]
                if picked[d] != stamp:
                    continue
                t = pick_of[d]
                if liked_row:  # what it added to the score (nothing: not explained)
                    span = knobs.like_full - knobs.like_from
                    part = min(max((likeness.data[q] - knobs.like_from) / span, 0.0), 1.0)
                    amount = knobs.like_weight * part
                    if knobs.like_damp > 0.0:  # as in the score: the interests' own v
                        own = best[d]
                        if rest[d] > 0.0 and bonus > 0.0:
                            own += bonus * -math.expm1(-rest[d] / bonus)
                        amount /= 1.0 + own / knobs.like_damp
                    if amount <= 0.0:
                        continue
                else:
                    amount = contrib.data[q] * weights.data[e]
                base = t * width
                j = n_found[t]
                while j > 0 and (
                    amount > buf_amount[base + j - 1]
                    or (amount == buf_amount[base + j - 1] and slot < buf_slot[base + j - 1])
                ):
                    buf_entry[base + j] = buf_entry[base + j - 1]
                    buf_pos[base + j] = buf_pos[base + j - 1]
                    buf_amount[base + j] = buf_amount[base + j - 1]
                    buf_slot[base + j] = buf_slot[base + j - 1]
                    j -= 1
                buf_entry[base + j] = entry
                buf_pos[base + j] = q
                buf_amount[base + j] = amount
                buf_slot[base + j] = slot
                n_found[t] += 1
        for t in range(n_top):
            cols[n_picks] = top_doc[t]
            vals[n_picks] = top_val[t]
            base = t * width
            for j in range(n_found[t]):
                match_entry[n_matches] = buf_entry[base + j]
                match_pos[n_matches] = buf_pos[base + j]
                match_amount[n_matches] = buf_amount[base + j]
                n_matches += 1
            n_picks += 1
            match_bounds[n_picks] = n_matches
        row_bounds[r + 1] = n_picks
    return KernelOut(
        row_bounds,
        cols[:n_picks],
        vals[:n_picks],
        match_bounds[: n_picks + 1],
        match_entry[:n_matches],
        match_pos[:n_matches],
        match_amount[:n_matches],
    )


RankRows = Callable[..., KernelOut]
_compiled: RankRows | None = None


def kernel() -> RankRows:
    """:func:`rank_rows` compiled (once per process; from Numba's disk cache when it can)."""
    global _compiled  # noqa: PLW0603  # one compiled function per process
    if _compiled is None:
        _compiled = njit_cached(rank_rows, "the ranking kernel")
    return _compiled
