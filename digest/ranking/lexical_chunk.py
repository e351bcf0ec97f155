"""One chunk of profiles through the lexical ranker, as arrays: no Python object per pick.

For profiles ``[start, stop)``: the candidate (profile, paper, score) triples are one sparse
product of the chunk's interest weights with the run's interest x paper contributions; what
may not be picked (the caller's eligibility mask, exclusions, missing required phrases) is a
dense boolean chunk x papers matrix, looked up once per candidate; the best ``top`` of each
row are found by a histogram cut and a sort of the survivors; the explanations of the picks
are two sparse element-wise products (the profile's interests x the paper's matching
interests). Everything is a function of the run's plan and the chunk's rows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from digest.ranking.base import EligibleFn
from digest.ranking.lexical_index import LexicalIndex, Matrix
from digest.ranking.lexical_plan import Plan

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_BUCKETS = 64  # histogram resolution of the top-n cut
# Up to this many interest x paper cells (32 MB of int32), explanations look contributions up
# in a dense table; beyond, by binary search (4x slower, no memory).
DENSE_LOOKUP = 8_000_000


@dataclass(frozen=True, eq=False)
class RunContext:
    """What every chunk of one :meth:`rank` call reads; built once per call."""

    index: LexicalIndex
    plan: Plan
    tops: IntArray
    eligible: EligibleFn | None
    contrib_keys: IntArray  # interest * n_docs + paper of each plan.contrib entry, ascending
    contrib_table: npt.NDArray[np.int32] | None  # the same as a dense key -> position table

    @classmethod
    def build(
        cls, index: LexicalIndex, plan: Plan, tops: IntArray, eligible: EligibleFn | None
    ) -> RunContext:
        keys = entry_keys(plan.contrib)
        if keys.size and not (np.diff(keys) > 0).all():  # plan.fields is aligned with .data
            raise ValueError("plan.contrib must have sorted indices")
        table = None
        if plan.contrib.shape[0] * plan.contrib.shape[1] <= DENSE_LOOKUP:
            table = np.full(plan.contrib.shape[0] * plan.contrib.shape[1], -1, dtype=np.int32)
            table[keys] = np.arange(keys.size, dtype=np.int32)
        return cls(index, plan, tops, eligible, keys, table)


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
    match_bounds: IntArray  # matches of pick i are match_of[match_bounds[i]:match_bounds[i+1]]
    match_of: IntArray  # index into the distinct matches below
    match_texts: IntArray  # distinct matches: index into plan.texts
    match_fields: IntArray  # explanation code (see lexical._FIELDS)
    match_amounts: FloatArray  # weight * contribution


def chunk_picks(context: RunContext, start: int, stop: int) -> ChunkPicks:
    """The picks of profiles ``[start, stop)`` with their explanations, as arrays."""
    rows, cols, vals = _candidates(context, start, stop)
    rows, cols, vals = _top(rows, cols, vals, context.tops[start:stop], len(context.index.docs))
    row_bounds = np.zeros(stop - start + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=stop - start), out=row_bounds[1:])
    return ChunkPicks(row_bounds, cols, vals, *_explain(context, start, rows, cols))


def _allowed(context: RunContext, start: int, stop: int) -> BoolArray | None:
    """Chunk x papers, False where nothing may be picked; None when everything may."""
    plan, shape = context.plan, (stop - start, len(context.index.docs))
    mask: BoolArray | None = None
    if context.eligible is not None:
        mask = np.array(context.eligible(start, stop), dtype=np.bool_)  # a copy: written below
        if mask.shape != shape:
            raise ValueError(f"eligible({start}, {stop}) has shape {mask.shape}")
    excl, req, blocked = plan.excl[start:stop], plan.req[start:stop], plan.blocked[start:stop]
    if mask is None and (excl.nnz or req.nnz or blocked.any()):
        mask = np.ones(shape, dtype=np.bool_)
    if mask is None:
        return None
    if excl.nnz:
        found = sp.coo_matrix(excl @ plan.excl_match)
        mask[found.row, found.col] = False
    if req.nnz:
        need = np.flatnonzero(np.diff(req.indptr))
        count = sp.csr_matrix(req[need] @ plan.req_match).toarray()
        mask[need] &= count == plan.n_required[start + need][:, None]
    mask[blocked] = False
    return mask


def _candidates(
    context: RunContext, start: int, stop: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """The (chunk row, paper, score) triples that may be picked and may make their row's top."""
    index, plan, n_docs = context.index, context.plan, len(context.index.docs)
    allowed = _allowed(context, start, stop)
    scores = sp.csr_matrix(plan.weights[start:stop] @ plan.contrib)
    rows = np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(scores.indptr))
    cols = scores.indices
    vals = np.asarray(scores.data, dtype=np.float64)
    popular = np.flatnonzero(plan.popular_only[start:stop])
    if popular.size:  # no interests, only the upvote prior: every upvoted paper competes
        docs = np.flatnonzero(index.popularity > 0)
        rows = np.concatenate([rows, np.repeat(popular, docs.size)])
        cols = np.concatenate([cols, np.tile(docs, popular.size)])
        vals = np.concatenate([vals, np.zeros(popular.size * docs.size)])
    weight = plan.popularity_weight[start:stop]
    if (weight > 0).any():
        vals = vals + weight[rows] * index.popularity[cols]
    ok = None if allowed is None else allowed.ravel().take(rows * n_docs + cols)
    threshold = plan.threshold[start:stop]
    if np.isfinite(threshold).any():
        above = vals >= threshold[rows]
        ok = above if ok is None else ok & above
    keep = _may_be_top(rows, vals, ok, context.tops[start:stop])
    if keep is None:
        return rows, cols.astype(np.int64), vals
    sel = np.flatnonzero(keep)
    return rows[sel], cols[sel].astype(np.int64), vals[sel]


def _may_be_top(
    rows: IntArray, vals: FloatArray, ok: BoolArray | None, tops: IntArray
) -> BoolArray | None:
    """Entries that are ``ok`` and may be in their row's top, without sorting: a histogram
    of each row's scores (bucket 0 holds what is not ok) tells the lowest bucket the row's
    ``top``-th best entry can be in. None: keep everything."""
    if rows.size <= 4 * int(tops.sum()) or not vals.max() > vals.min():
        return ok
    low, high = float(vals.min()), float(vals.max())
    bucket = ((vals - low) * ((_BUCKETS - 1) / (high - low))).astype(np.int64) + 1
    if ok is not None:
        bucket *= ok
    hist = np.bincount(rows * (_BUCKETS + 1) + bucket, minlength=tops.size * (_BUCKETS + 1))
    above = np.cumsum(hist.reshape(tops.size, _BUCKETS + 1)[:, :0:-1], axis=1)
    enough = above >= np.maximum(tops, 1)[:, None]
    cut = np.where(enough[:, -1], _BUCKETS - np.argmax(enough, axis=1), 1)
    keep: BoolArray = bucket >= cut[rows]
    return keep


def _top(
    rows: IntArray, cols: IntArray, vals: FloatArray, tops: IntArray, n_docs: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """The best ``tops[row]`` entries of each row: score descending, then paper index."""
    order = _order(rows, vals, cols, descending=True, width=n_docs)
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = np.bincount(rows, minlength=tops.size)
    rank = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = rank < tops[rows]
    return rows[keep], cols[keep], vals[keep]


def _order(
    groups: IntArray, vals: FloatArray, ties: IntArray, *, descending: bool, width: int
) -> IntArray:
    """Sort order by (group, value, tie); (group, tie) pairs must be unique, ties < width.

    One int64 key sorted by the fast unstable argsort: values become their exact rank
    among the distinct values, so no precision is lost (np.lexsort is 5x slower here)."""
    distinct, rank = np.unique(vals, return_inverse=True)
    rank = rank.ravel().astype(np.int64)
    k = max(distinct.size, 1)
    if int(groups.max(initial=0) + 1) * k * width >= 2**62:  # would overflow: slow and exact
        return np.lexsort((ties, -vals if descending else vals, groups))
    if descending:
        rank = k - 1 - rank
    return np.argsort((groups * k + rank) * width + ties)


def _explain(
    context: RunContext, start: int, rows: IntArray, cols: IntArray
) -> tuple[IntArray, IntArray, IntArray, IntArray, FloatArray]:
    """Which interests explain each pick, best contribution first (then profile order).

    Each (pick, interest of the picking profile) is looked up in the interest x paper
    contributions; the hits are the matches."""
    plan, n_docs = context.plan, len(context.index.docs)
    weights = plan.weights
    first = weights.indptr[start + rows]
    count = weights.indptr[start + rows + 1] - first
    pick = np.repeat(np.arange(rows.size, dtype=np.int64), count)
    entry = np.arange(pick.size) - np.repeat(np.cumsum(count) - count, count) + first[pick]
    keys = context.contrib_keys
    wanted = weights.indices[entry].astype(np.int64) * n_docs + cols[pick]
    if context.contrib_table is not None:
        pos = context.contrib_table[wanted].astype(np.int64)
        hit = pos >= 0
    else:
        pos = np.minimum(np.searchsorted(keys, wanted), max(keys.size - 1, 0))
        hit = keys[pos] == wanted if keys.size else np.zeros(wanted.size, dtype=np.bool_)
    pick, entry, pos = pick[hit], entry[hit], pos[hit]
    amount = plan.contrib.data[pos] * weights.data[entry]
    slots = plan.slots[entry]
    order = _order(pick, amount, slots, descending=True, width=int(slots.max(initial=0)) + 1)
    pick, entry, pos, amount = pick[order], entry[order], pos[order], amount[order]
    # Profiles share interests: the same (interest, weight, paper) is one Match object.
    key = plan.labels[entry] * n_docs + cols[pick]
    _, firsts, inverse = np.unique(key, return_index=True, return_inverse=True)
    bounds = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(pick, minlength=rows.size), out=bounds[1:])
    return (
        bounds,
        inverse.astype(np.int64).ravel(),
        plan.spellings[entry[firsts]],
        plan.fields[pos[firsts]],
        amount[firsts],
    )
