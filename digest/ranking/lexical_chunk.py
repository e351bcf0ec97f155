"""One chunk of profiles through the lexical ranker, as arrays: no Python object per pick.

For profiles ``[start, stop)``, the compiled kernel (:mod:`digest.ranking.lexical_kernel`)
scores every paper an interest of the profile matches, drops what may not be picked (the
caller's eligibility mask, exclusions, missing required phrases, ``min_score``), keeps the
best ``top`` and finds the interests that explain each pick. Everything is a function of the
run's plan and the chunk's rows only, so results do not depend on the chunk size."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from digest.ranking.base import EligibleFn
from digest.ranking.lexical_index import LexicalIndex, Matrix
from digest.ranking.lexical_kernel import Csr, Knobs, kernel
from digest.ranking.lexical_plan import Plan

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
_EVERYTHING = np.ones((0, 0), dtype=np.bool_)  # the kernel's "no eligibility mask"
LIKED_CODE = 7  # explanation code of "like … that you rated up" (see lexical.explain)
DENSE_BAG = 16_000_000  # cells (64 MB of float32) up to which plan.bag is also a dense table


@dataclass(frozen=True, eq=False)
class RunContext:
    """What every chunk of one :meth:`rank` call reads; built once per call."""

    index: LexicalIndex
    plan: Plan
    tops: IntArray
    eligible: EligibleFn | None
    # The plan's matrices as the kernel takes them (converted once per run).
    weights: Csr
    contrib: Csr
    excl: Csr
    excl_match: Csr
    req: Csr
    req_match: Csr
    bag_indptr: IntArray  # plan.bag's CSR arrays in the kernel's dtypes
    bag_indices: npt.NDArray[np.int32]
    bag_dense: npt.NDArray[np.float32]  # plan.bag as a dense table, or (0, 0) when too big
    bag_max: FloatArray  # per interest, its full bag score (plan.bag_full)
    votes: Csr  # plan.ratings' matrices
    likeness: Csr
    knobs: Knobs
    # A match is an (interest, spelling, weight) label on a contrib entry of its interest:
    # run-wide id label_base[label] + entry position, in [0, n_matches); a paper rated up,
    # -1: what it adds depends on the profile's own score for the paper, so it is not shared.
    label_base: IntArray
    n_matches: int

    @classmethod
    def build(
        cls, index: LexicalIndex, plan: Plan, tops: IntArray, eligible: EligibleFn | None
    ) -> RunContext:
        contrib = plan.contrib
        if contrib.nnz and not contrib.has_sorted_indices:  # plan.fields is aligned with .data
            raise ValueError("plan.contrib must have sorted indices")
        uid = np.zeros(int(plan.labels.max(initial=-1)) + 1, dtype=np.int64)
        uid[plan.labels] = plan.weights.indices
        used = np.zeros(uid.size, dtype=np.bool_)
        used[plan.labels] = True
        indptr = contrib.indptr.astype(np.int64)
        size = np.where(used, indptr[uid + 1] - indptr[uid], 0)
        base = np.cumsum(size) - size - indptr[uid]
        p = index.params
        knobs = Knobs(
            p.bag_weight,
            p.rerank_depth,
            p.bonus,
            p.substantial,
            p.bag_spread,
            p.like_weight,
            p.dislike_weight,
            p.like_from,
            p.like_full,
            p.like_damp,
        )
        return cls(
            index,
            plan,
            tops,
            eligible,
            Csr.of(plan.weights),
            Csr.of(contrib),
            Csr.of(plan.excl),
            Csr.of(plan.excl_match),
            Csr.of(plan.req),
            Csr.of(plan.req_match),
            np.ascontiguousarray(plan.bag.indptr, dtype=np.int64),
            np.ascontiguousarray(plan.bag.indices, dtype=np.int32),
            _dense_or_empty(plan.bag),
            plan.bag_full,
            Csr.of(plan.ratings.votes),
            Csr.of(plan.ratings.likeness),
            knobs,
            base,
            int(size.sum()),
        )


def _dense_or_empty(matrix: Matrix) -> npt.NDArray[np.float32]:
    """A CSR matrix as a dense float32 table when it has at most ``DENSE_BAG`` cells: the
    kernel then reads a value in one step instead of a binary search (3x faster at 100,000
    profiles). Beyond, or when empty, a (0, 0) table: the kernel searches the CSR arrays."""
    if not matrix.nnz or matrix.shape[0] * matrix.shape[1] > DENSE_BAG:
        return np.zeros((0, 0), dtype=np.float32)
    return np.asarray(matrix.toarray(), dtype=np.float32)


def entry_keys(matrix: Matrix) -> IntArray:
    """``row * n_cols + col`` of each stored entry of a CSR matrix, in storage order."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    keys: IntArray = rows * matrix.shape[1] + matrix.indices
    return keys


class ChunkPicks(NamedTuple):
    """A chunk's picks as arrays, best first within each profile row."""

    row_bounds: IntArray  # picks of chunk row r are [row_bounds[r], row_bounds[r + 1])
    cols: IntArray  # paper index of each pick
    vals: FloatArray  # score of each pick
    match_bounds: IntArray  # matches of pick i are [match_bounds[i], match_bounds[i + 1])
    match_ids: IntArray  # run-wide id of the match (see RunContext); -1: a paper rated up
    match_texts: IntArray  # index into plan.texts; a paper rated up: -1 - its feedback row
    match_fields: IntArray  # explanation code (see lexical.explain)
    match_masks: IntArray  # units of the interest the paper holds (plan.masks)
    match_rows: IntArray  # the interest's row of plan.contrib (-1: a paper rated up)
    match_amounts: FloatArray  # weight * contribution


def chunk_picks(context: RunContext, start: int, stop: int) -> ChunkPicks:
    """The picks of profiles ``[start, stop)`` with their explanations, as arrays."""
    plan, n_docs = context.plan, len(context.index.docs)
    allowed = _EVERYTHING
    if context.eligible is not None:
        allowed = np.ascontiguousarray(context.eligible(start, stop), dtype=np.bool_)
        if allowed.shape != (stop - start, n_docs):
            raise ValueError(f"eligible({start}, {stop}) has shape {allowed.shape}")
    out = kernel()(
        start,
        stop,
        n_docs,
        context.tops,
        context.weights,
        plan.slots,
        context.contrib,
        context.excl,
        context.excl_match,
        context.req,
        context.req_match,
        plan.n_required,
        plan.blocked,
        allowed,
        plan.threshold,
        plan.popularity_weight,
        context.index.popularity,
        plan.popular_only,
        context.bag_indptr,
        context.bag_indices,
        plan.bag.data,
        context.bag_dense,
        context.bag_max,
        context.votes,
        context.likeness,
        plan.ratings.liked,
        context.knobs,
    )
    # Profiles share interests: the same (interest, weight, paper) is one Match object.
    entry, pos = out.match_entry, out.match_pos
    liked = entry < 0
    if not liked.any():  # no rated paper explains anything here (no feedback: always)
        return ChunkPicks(
            out.row_bounds,
            out.cols,
            out.vals,
            out.match_bounds,
            context.label_base[plan.labels[entry]] + pos,
            plan.spellings[entry],
            plan.fields[pos],
            plan.masks[pos],
            plan.weights.indices[entry].astype(np.int64),
            out.match_amount,
        )
    own = ~liked
    e, q = entry[own], pos[own]
    ids = np.full(entry.size, -1, dtype=np.int64)
    ids[own] = context.label_base[plan.labels[e]] + q
    texts = -1 - plan.ratings.votes.indices[np.where(liked, -1 - entry, 0)].astype(np.int64)
    texts[own] = plan.spellings[e]
    codes = np.full(entry.size, LIKED_CODE, dtype=np.int64)
    codes[own] = plan.fields[q]
    masks = np.zeros(entry.size, dtype=np.int64)
    masks[own] = plan.masks[q]
    rows = np.full(entry.size, -1, dtype=np.int64)
    rows[own] = plan.weights.indices[e]
    return ChunkPicks(
        out.row_bounds, out.cols, out.vals, out.match_bounds, ids, texts, codes, masks, rows,
        out.match_amount,
    )  # fmt: skip
