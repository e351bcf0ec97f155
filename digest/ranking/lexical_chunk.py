"""One chunk of profiles through the lexical ranker, as arrays: no Python object per pick.

For profiles ``[start, stop)``: the candidate (profile, paper, score) triples are one sparse
product of the chunk's interest weights with the run's interest x paper contributions; what
may not be picked (the caller's eligibility mask, exclusions, missing required phrases) is a
dense boolean chunk x papers matrix. The best ``top`` of each row are found in three steps,
each exact: a histogram of a strided quarter of the candidates gives every row a score its
``top``-th best reaches (most candidates fall below it and are dropped before the mask is
even looked up); a histogram of the rest cuts again; the few survivors are sorted. The
explanations look each (pick, interest of its profile) up in the contributions. Everything
is a function of the run's plan and the chunk's rows only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from digest.ranking.base import EligibleFn
from digest.ranking.lexical_index import LexicalIndex, Matrix
from digest.ranking.lexical_plan import Plan

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_BUCKETS = 64  # histogram resolution of the first, rough top-n cut
_FINE_BUCKETS = 256  # and of the second
_STRIDE = 4  # 1 in _STRIDE candidates makes the sample for the first, rough cut
_SAMPLE_FROM = 16  # candidates per wanted pick above which the rough cut pays
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
    # A match is an (interest, spelling, weight) label on a contrib entry of its interest:
    # run-wide id label_base[label] + entry position, in [0, n_matches).
    label_base: IntArray
    n_matches: int

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
        uid = np.zeros(int(plan.labels.max(initial=-1)) + 1, dtype=np.int64)
        uid[plan.labels] = plan.weights.indices
        used = np.zeros(uid.size, dtype=np.bool_)
        used[plan.labels] = True
        indptr = plan.contrib.indptr.astype(np.int64)
        size = np.where(used, indptr[uid + 1] - indptr[uid], 0)
        base = np.cumsum(size) - size - indptr[uid]
        return cls(index, plan, tops, eligible, keys, table, base, int(size.sum()))


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
    match_ids: IntArray  # run-wide id of the match (see RunContext)
    match_texts: IntArray  # index into plan.texts
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
    index, plan = context.index, context.plan
    allowed = _allowed(context, start, stop)
    scores = sp.csr_matrix(plan.weights[start:stop] @ plan.contrib)
    indptr = scores.indptr.astype(np.int64)
    rows = np.repeat(np.arange(stop - start, dtype=np.int64), np.diff(indptr))
    cols = scores.indices
    vals = np.asarray(scores.data, dtype=np.float64)
    popular = np.flatnonzero(plan.popular_only[start:stop])
    if popular.size:  # no interests, only the upvote prior: every upvoted paper competes
        docs = np.flatnonzero(index.popularity > 0)
        rows = np.concatenate([rows, np.repeat(popular, docs.size)])
        cols = np.concatenate([cols, np.tile(docs, popular.size)])
        vals = np.concatenate([vals, np.zeros(popular.size * docs.size)])
        # Entries of those rows, for the per-row passes below (they had none in the product).
        indptr = indptr.copy()
        indptr[popular] = indptr[-1] + docs.size * np.arange(popular.size)
        indptr[popular + 1] = indptr[popular] + docs.size  # popular rows are never adjacent
    # Only the rows that have them pay for the upvote prior and for a threshold (adding
    # 0 * upvotes is exact, so the other rows are unchanged).
    weight = plan.popularity_weight[start:stop]
    at = _entries(indptr, np.flatnonzero(weight > 0))
    if at.size:
        vals[at] = vals[at] + weight[rows[at]] * index.popularity[cols[at]]
    limits = plan.threshold[start:stop]
    threshold = limits if np.isfinite(limits).any() else None
    tops = context.tops[start:stop]
    if rows.size > _SAMPLE_FROM * int(tops.sum()):
        # A strided sample's top-th best is a lower bound of its row's: only what reaches it
        # can be in the row's top. It cuts ~80% of the entries before the mask look-ups.
        sample = slice(None, None, _STRIDE)
        sampled_ok = _usable(allowed, threshold, rows[sample], cols[sample], vals[sample])
        sel = np.flatnonzero(vals >= _floor(rows[sample], vals[sample], sampled_ok, tops)[rows])
        rows, cols, vals = rows[sel], cols[sel], vals[sel]
    ok = _usable(allowed, threshold, rows, cols, vals)
    if ok is not None:
        sel = np.flatnonzero(ok)
        rows, cols, vals = rows[sel], cols[sel], vals[sel]
    cols = cols.astype(np.int64)
    keep = _may_be_top(rows, vals, tops)
    if keep is None:
        return rows, cols, vals
    sel = np.flatnonzero(keep)
    return rows[sel], cols[sel], vals[sel]


def _usable(
    allowed: BoolArray | None,
    threshold: FloatArray | None,
    rows: IntArray,
    cols: npt.NDArray[np.integer[Any]],
    vals: FloatArray,
) -> BoolArray | None:
    """Which entries may be picked (mask and ``min_score``); None: all of them."""
    ok = None if allowed is None else allowed.ravel().take(rows * allowed.shape[1] + cols)
    if threshold is not None:
        above = vals >= threshold[rows]
        ok = above if ok is None else np.logical_and(ok, above, out=above)
    return ok


def _entries(indptr: IntArray, rows: IntArray) -> IntArray:
    """Positions of the entries of ``rows`` (CSR row pointers ``indptr``), in row order."""
    begin, size = indptr[rows], indptr[rows + 1] - indptr[rows]
    shift = np.repeat(begin - (np.cumsum(size) - size), size)
    out: IntArray = np.arange(shift.size, dtype=np.int64) + shift
    return out


def _floor(rows: IntArray, vals: FloatArray, ok: BoolArray | None, tops: IntArray) -> FloatArray:
    """Per row, a value at least ``tops[row]`` of the ``ok`` entries reach (-inf when the row
    has fewer): the lower edge of the histogram bucket of the row's top-th best, minus half
    a bucket so that rounding cannot put an entry below it."""
    floor = np.full(tops.size, -np.inf)
    if not rows.size or not vals.max() > vals.min():
        return floor
    low, high = float(vals.min()), float(vals.max())
    bucket = _bucket(vals, low, high, _BUCKETS)
    if ok is not None:
        bucket *= ok  # bucket 0: not counted
    cut = _cut(rows, bucket, tops, _BUCKETS)
    found = cut > 0
    floor[found] = low + (cut[found] - 1.5) * ((high - low) / (_BUCKETS - 1))
    return floor


def _may_be_top(rows: IntArray, vals: FloatArray, tops: IntArray) -> BoolArray | None:
    """Entries that may be in their row's top (a finer histogram than :func:`_floor`, and
    no margin: an entry is kept when its bucket reaches that of its row's top-th best)."""
    if rows.size <= 4 * int(tops.sum()) or not vals.max() > vals.min():
        return None
    bucket = _bucket(vals, float(vals.min()), float(vals.max()), _FINE_BUCKETS)
    keep: BoolArray = bucket >= _cut(rows, bucket, tops, _FINE_BUCKETS)[rows]
    return keep


def _bucket(vals: FloatArray, low: float, high: float, buckets: int) -> IntArray:
    """1 to ``buckets``, non-decreasing with the value (all a cut needs)."""
    out: IntArray = ((vals - low) * ((buckets - 1) / (high - low))).astype(np.int64) + 1
    return out


def _cut(rows: IntArray, bucket: IntArray, tops: IntArray, buckets: int) -> IntArray:
    """Per row, the bucket of its top-th best entry (buckets 0 are not counted); 0 when the
    row has fewer than ``top`` entries."""
    hist = np.bincount(rows * (buckets + 1) + bucket, minlength=tops.size * (buckets + 1))
    above = np.cumsum(hist.reshape(tops.size, buckets + 1)[:, :0:-1], axis=1)
    enough = above >= np.maximum(tops, 1)[:, None]
    cut: IntArray = np.where(enough[:, -1], buckets - np.argmax(enough, axis=1), 0)
    return cut


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
    indptr = weights.indptr.astype(np.int64)
    entry = _entries(indptr, start + rows)
    count = indptr[start + rows + 1] - indptr[start + rows]
    pick = np.repeat(np.arange(rows.size, dtype=np.int64), count)
    wanted = weights.indices[entry].astype(np.int64)
    wanted *= n_docs
    wanted += cols[pick]
    keys = context.contrib_keys
    if context.contrib_table is not None:
        pos = context.contrib_table[wanted].astype(np.int64)
        hit = pos >= 0
    else:
        pos = np.minimum(np.searchsorted(keys, wanted), max(keys.size - 1, 0))
        hit = keys[pos] == wanted if keys.size else np.zeros(wanted.size, dtype=np.bool_)
    pick, entry, pos = pick[hit], entry[hit], pos[hit]
    amount = plan.contrib.data[pos] * weights.data[entry]
    bounds = np.zeros(rows.size + 1, dtype=np.int64)
    counts = np.bincount(pick, minlength=rows.size)
    np.cumsum(counts, out=bounds[1:])
    # Matches stay in their pick's block; only blocks of several need ordering.
    several = np.flatnonzero(counts[pick] > 1)
    if several.size:
        slots = plan.slots[entry[several]]
        width = int(slots.max(initial=0)) + 1
        order = several[_order(pick[several], amount[several], slots, descending=True, width=width)]
        entry[several], pos[several], amount[several] = entry[order], pos[order], amount[order]
    # Profiles share interests: the same (interest, weight, paper) is one Match object.
    ids = context.label_base[plan.labels[entry]] + pos
    return bounds, ids, plan.spellings[entry], plan.fields[pos], amount
