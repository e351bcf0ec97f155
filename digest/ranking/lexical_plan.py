"""The profile side of the lexical ranker, compiled once per :meth:`rank` call.

Many subscribers share interests ("diffusion models", "RL"), so interests are deduplicated
first: each distinct interest is scored against every paper once (a sparse
interests × papers matrix of bounded contributions), and a profile's score is then a sparse
weighted sum of its interests' rows. Exclusions and required phrases are compiled the same
way into phrase-match matrices. Everything here is independent of the chunk size, which is
why chunked and unchunked runs give identical results.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from digest.ranking.base import InterestKind, Profile
from digest.ranking.lexical_evidence import grade_input
from digest.ranking.lexical_evidence import kernel as grading_kernel
from digest.ranking.lexical_feedback import Ratings, build_ratings
from digest.ranking.lexical_index import (
    Compiled,
    LexicalIndex,
    Matrix,
    Views,
    compiled_matrix,
    positions,
)
from digest.ranking.profile_text import split_prefix

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
KIND_CODE = {"keyword": 0, "author": 1, "category": 2}
_KINDS: tuple[InterestKind, ...] = ("keyword", "author", "category")
_INTERESTS = operator.attrgetter("interests")
_EXCLUDES = operator.attrgetter("excludes")
_REQUIRED = operator.attrgetter("required")
_MIN_SCORE = operator.attrgetter("min_score")
_POPULARITY = operator.attrgetter("popularity_weight")
_TEXT = operator.attrgetter("text")
_KIND = operator.attrgetter("kind")
_WEIGHT = operator.attrgetter("weight")
_BLOCK = 4096  # interests scored per matrix product (bounds the temporary's memory)


@dataclass(frozen=True, eq=False)
class Plan:
    """Compiled profiles. Row ``p`` of ``weights`` holds profile ``p``'s interests."""

    weights: Matrix  # profiles x interests, the interest weights
    slots: IntArray  # aligned with weights.data: position in profile.interests
    labels: IntArray  # aligned with weights.data: id of (interest, spelling, weight), compact
    spellings: IntArray  # aligned with weights.data: index into ``texts``
    texts: list[str]  # the interests as the profiles spell them
    contrib: Matrix  # interests x docs, unweighted contribution in (0, 1)
    fields: IntArray  # aligned with contrib.data: explanation code (see lexical.explain)
    masks: IntArray  # aligned with contrib.data: the interest's units the paper holds
    unit_words: list[tuple[str, ...]]  # per interest (row of contrib): its units as typed
    excl: Matrix  # profiles x exclusions
    excl_match: Matrix  # exclusions x docs
    req: Matrix  # profiles x required phrases
    req_match: Matrix  # required phrases x docs
    n_required: IntArray
    threshold: npt.NDArray[np.float64]
    popularity_weight: npt.NDArray[np.float64]
    popular_only: BoolArray  # no interests at all: rank by the upvote prior alone
    blocked: BoolArray  # a required phrase occurs in no paper: nothing can qualify
    kinds: IntArray  # per interest (row of contrib): KIND_CODE, for rankers that add to contrib
    bag: Matrix  # interests x docs (float32): idf x BM25F weight over the interest's words
    ratings: Ratings  # the profiles' rated papers (lexical_feedback)
    # Per interest, the bag score that counts as all of it: a paper saying each of its words
    # once in the title and once in the abstract (or its best paper, if that is more).
    bag_full: npt.NDArray[np.float64]


def build_plan(
    index: LexicalIndex, profiles: Sequence[Profile], *, floor: float | None = None
) -> Plan:
    """Compile every profile's interests, exclusions and requirements; an interest matches
    where its graded strength reaches ``floor`` (default: the index's ``params.floor``)."""
    # 100,000 profiles hold ~550,000 interests but only thousands of distinct texts: each
    # distinct (kind, text) is compiled once, and everything per entry is an integer array
    # built by C-level loops (map, chain, fromiter), never a Python object per entry.
    n = len(profiles)
    interests = _Table(index)
    lists = list(map(_INTERESTS, profiles))
    counts = np.fromiter(map(len, lists), np.int64, n)
    flat = list(itertools.chain.from_iterable(lists))
    raw_texts = list(map(_TEXT, flat))
    text_ids = dict(zip(dict.fromkeys(raw_texts), itertools.count()))
    text = np.fromiter(map(text_ids.__getitem__, raw_texts), np.int64, len(flat))
    kind = np.fromiter(map(KIND_CODE.__getitem__, map(_KIND, flat)), np.int64, len(flat))
    texts = list(text_ids)
    # Rows of the contributions in order of first appearance: that fixes the column order
    # of the weights, hence the order in which a score is summed.
    pairs, first_seen, pair_of = np.unique(text * 3 + kind, return_index=True, return_inverse=True)
    pair_uid = np.full(pairs.size, -1, dtype=np.int64)
    for p in np.argsort(first_seen, kind="stable").tolist():
        pair = int(pairs[p])
        uid = interests.uid(_KINDS[pair % 3], texts[pair // 3], scoring=True)
        pair_uid[p] = -1 if uid is None else uid
    pair_of = pair_of.ravel()
    uids = pair_uid[pair_of]
    usable = uids >= 0
    weight_matrix, entry_slots, spellings, labels = _interest_rows(
        np.repeat(np.arange(n, dtype=np.int64), counts)[usable],
        uids[usable],
        np.asarray(interests.same, dtype=np.int64)[uids[usable]],
        np.fromiter(map(_WEIGHT, flat), np.float64, len(flat))[usable],
        (np.arange(len(flat), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts))[
            usable
        ],
        text[usable],
        pair_of[usable],
        (n, len(interests.compiled)),
    )
    views = index.views()  # presence and field matrices, for this call only
    excl, _, _, excludes = _phrase_rows(index, list(map(_EXCLUDES, profiles)))
    req, n_required, blocked, requires = _phrase_rows(index, list(map(_REQUIRED, profiles)))
    popularity_weight = np.fromiter(map(_POPULARITY, profiles), np.float64, n)
    floor = index.params.floor if floor is None else floor
    contrib, fields, masks = _contributions(index, views, interests.compiled, floor)
    bag = _bag_rows(index, interests.compiled)
    return Plan(
        weights=weight_matrix,
        slots=entry_slots,
        labels=labels,
        spellings=spellings,
        texts=texts,
        contrib=contrib,
        fields=fields,
        masks=masks,
        unit_words=[c.unit_words for c in interests.compiled],
        excl=excl,
        excl_match=_phrase_matches(views.present, excludes.compiled),
        req=req,
        req_match=_phrase_matches(views.present, requires.compiled),
        n_required=n_required,
        threshold=np.fromiter(
            (-np.inf if s is None else s for s in map(_MIN_SCORE, profiles)), np.float64, n
        ),
        popularity_weight=popularity_weight,
        popular_only=(counts == 0) & (popularity_weight > 0),
        blocked=blocked,
        kinds=np.array([KIND_CODE[c.kind] for c in interests.compiled], dtype=np.int64),
        bag=bag,
        bag_full=_bag_full(index, interests.compiled, bag),
        ratings=build_ratings(index, views, profiles),
    )


def _phrase_rows(
    index: LexicalIndex, phrases: list[tuple[str, ...]]
) -> tuple[Matrix, IntArray, BoolArray, _Table]:
    """Profiles x distinct phrases (0/1, sorted unique columns), the number of distinct
    phrases per profile, whether one can match no paper, and the phrases' table."""
    n, table = len(phrases), _Table(index)
    raw = list(itertools.chain.from_iterable(phrases))
    found = {text: table.uid(*split_prefix(text)) for text in dict.fromkeys(raw)}
    uid = np.fromiter((-1 if u is None else u for u in map(found.__getitem__, raw)), np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), np.fromiter(map(len, phrases), np.int64, n))
    blocked = np.zeros(n, dtype=np.bool_)
    blocked[owner[uid < 0]] = True
    width = max(len(table.compiled), 1)
    keys = np.unique(owner[uid >= 0] * width + uid[uid >= 0])
    indptr = np.zeros(n + 1, dtype=np.int64)
    per_row = np.bincount(keys // width, minlength=n)
    np.cumsum(per_row, out=indptr[1:])
    matrix = sp.csr_matrix(
        (np.ones(keys.size), keys % width, indptr), shape=(n, len(table.compiled))
    )
    return matrix, per_row.astype(np.int64), blocked, table


def _interest_rows(
    prof: IntArray,
    uid: IntArray,
    same: IntArray,
    weight: npt.NDArray[np.float64],
    slot: IntArray,
    text: IntArray,
    pair: IntArray,
    shape: tuple[int, int],
) -> tuple[Matrix, IntArray, IntArray, IntArray]:
    """Profiles x interests CSR, columns ascending. An interest listed twice (two spellings
    of one thing, ``same``: "GNN", "graph neural networks") counts once, at its largest
    weight, scored and explained as its first spelling.

    The entries come in profile order, then slot order; one sort of a unique int64 key puts
    them in (profile, thing, slot) order, a second the kept ones in (profile, interest)."""
    n_slots = int(slot.max(initial=0)) + 1
    group = prof * (int(same.max(initial=0)) + 1) + same
    order = np.argsort(group * n_slots + slot)
    group = group[order]
    first = np.ones(group.size, dtype=np.bool_)
    np.not_equal(group[1:], group[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    best = np.maximum.reduceat(weight[order], starts) if starts.size else weight[:0]
    kept = order[starts]
    by_column = np.argsort(prof[kept] * shape[1] + uid[kept])
    kept, best = kept[by_column], best[by_column]
    prof, uid, slot, text, pair = prof[kept], uid[kept], slot[kept], text[kept], pair[kept]
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(prof, minlength=shape[0]), out=indptr[1:])
    matrix = sp.csr_matrix((best, uid, indptr), shape=shape)
    # A label is (interest, spelling, weight): on the same paper, the same Match. The
    # (kind, text) pair fixes the interest and the spelling.
    _, weight_id = np.unique(best, return_inverse=True)
    n_weights = int(weight_id.max(initial=0)) + 1
    labels = pair * n_weights + weight_id.ravel()
    if (int(pair.max(initial=0)) + 1) * n_weights > max(labels.size, 1024):  # keep it compact
        labels = np.unique(labels, return_inverse=True)[1].ravel()
    return matrix, slot, text, labels.astype(np.int64)


class _Table:
    """Distinct compiled phrases, keyed by what they match and, for interests, by their
    typed words (so spellings share a row when they are graded and explained alike)."""

    def __init__(self, index: LexicalIndex) -> None:
        self._index = index
        self._by_text: dict[tuple[str, str], int | None] = {}
        self._by_key: dict[tuple[object, ...], int] = {}
        self._by_match: dict[tuple[object, ...], int] = {}
        self.compiled: list[Compiled] = []
        self.same: list[int] = []  # per row: rows scoring the same features share this id

    def uid(self, kind: InterestKind, text: str, *, scoring: bool = False) -> int | None:
        """Row id of a phrase; None when it cannot match any paper."""
        cache_key = (kind, text)
        if cache_key in self._by_text:
            return self._by_text[cache_key]
        compiled = self._index.compiled(kind, text)
        usable = bool(compiled.score) if scoring else compiled.complete
        uid = None
        if usable:
            # Spellings that score the same features in the same typed words are one row
            # ("Graph Neural Networks", "graph neural networks"), compiled as the first one
            # seen spells it. An acronym and its expansion ("GNN") are one thing (``same``:
            # a profile listing both counts it once) but two rows: a typed word counts only
            # whole, and an explanation names the words its subscriber typed, whoever else
            # is ranked in the same run.
            match = (compiled.kind, compiled.score if scoring else compiled.needed)
            typed = (compiled.score_units, compiled.whole) if scoring else ()
            uid = self._by_key.setdefault((*match, *typed), len(self.compiled))
            if uid == len(self.compiled):
                self.compiled.append(compiled)
                self.same.append(self._by_match.setdefault(match, len(self._by_match)))
        self._by_text[cache_key] = uid
        return uid


def _contributions(
    index: LexicalIndex, views: Views, compiled: Sequence[Compiled], floor: float
) -> tuple[Matrix, IntArray, IntArray]:
    """Interests x docs: ``1 - exp(-s / scale)`` where the graded strength ``s >= floor``
    (:mod:`digest.ranking.lexical_evidence`), else empty; aligned with its data, the
    explanation code (field bits + grade << 3 for keywords; 4 authors, 5 categories) and
    the bit mask of the interest's units the paper holds."""
    p = index.params
    n_features = len(index.vocab)
    w = index.weights_t
    arrays = (
        np.ascontiguousarray(w.indptr, dtype=np.int64),
        np.ascontiguousarray(w.indices, dtype=np.int32),
        np.ascontiguousarray(w.data, dtype=np.float64),
        index.field_bits,
        index.token_starts,
        index.tokens,
        index.token_pos,
    )
    # Units only take features away and no grade factor exceeds ``bound``, so BM25F x
    # coverage ** power x bound, or BM25F x partial for one word alone, bounds the graded
    # strength: what cannot reach the floor is dropped before the per-candidate work.
    bound = max(1.0, p.abstract_phrase, p.near, p.scattered)
    blocks = [sp.csr_matrix((0, len(index.docs)))]
    codes = [np.zeros(0, dtype=np.int64)]
    masks = [np.zeros(0, dtype=np.int64)]
    for start in range(0, len(compiled), _BLOCK):
        part = compiled[start : start + _BLOCK]
        raw = compiled_matrix([c.score for c in part], n_features) @ index.weights_t
        cover = compiled_matrix([c.coverage for c in part], n_features) @ views.held
        s = _scaled(raw, cover, p.coverage_power)
        # One word alone gets at most the whole BM25F times partial times the largest
        # share a distinctive word has of the interest, squared.
        alone = np.array([_alone_bound(c) for c in part], dtype=np.float64)
        alone = np.repeat(alone, np.diff(s.indptr))
        hopeless = (s.data * bound < floor) & (_raw_at(raw, s) * p.partial * alone < floor)
        s.data[hopeless] = 0.0
        s.eliminate_zeros()
        s.sort_indices()
        rows = np.repeat(np.arange(len(part), dtype=np.int64), np.diff(s.indptr))
        cols = s.indices.astype(np.int64)
        kinds = np.array([KIND_CODE[c.kind] for c in part], dtype=np.int64)
        value = s.data.astype(np.float64)
        code = np.where(kinds[rows] == KIND_CODE["author"], 4, 5).astype(np.int64)
        mask = np.zeros(rows.size, dtype=np.int64)
        keyword_rows = np.flatnonzero(kinds == KIND_CODE["keyword"])
        at = np.flatnonzero(kinds[rows] == KIND_CODE["keyword"])
        if at.size:
            local = np.full(len(part), -1, dtype=np.int64)
            local[keyword_rows] = np.arange(keyword_rows.size)
            graded = grading_kernel()(
                local[rows[at]],
                cols[at],
                grade_input([part[k] for k in keyword_rows.tolist()]),
                *arrays,
                p.coverage_power,
                p.abstract_phrase,
                p.near,
                p.scattered,
                p.window,
                p.partial,
            )
            value[at], code[at], mask[at] = graded.value, graded.code, graded.mask
        keep = value >= floor
        indptr = np.zeros(len(part) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows[keep], minlength=len(part)), out=indptr[1:])
        blocks.append(
            sp.csr_matrix(
                (-np.expm1(-value[keep] / p.scale), cols[keep], indptr),
                shape=(len(part), len(index.docs)),
            )
        )
        codes.append(code[keep])
        masks.append(mask[keep])
    return (
        sp.csr_matrix(sp.vstack(blocks, format="csr")),
        np.concatenate(codes),
        np.concatenate(masks),
    )


def _bag_full(index: LexicalIndex, compiled: Sequence[Compiled], bag: Matrix) -> FloatArray:
    """Each interest's full bag score (see ``Plan.bag_full``): re-ranking shares are
    relative to what the interest could get, not to the best paper of the batch, so a
    passing mention of a rare interest is not taken for all of it."""
    p = index.params
    both = p.title_boost + 1.0  # one mention in each field, before saturation
    once = both * (p.k1 + 1) / (both + p.k1)
    generic = index.analyzer.generic_terms
    names = list(index.vocab)
    full = np.array(
        [
            sum(float(index.idf[f]) for f in c.words if names[f] not in generic) * once
            if c.kind == "keyword"
            else 0.0
            for c in compiled
        ],
        dtype=np.float64,
    )
    best = np.zeros(bag.shape[0], dtype=np.float64)
    filled = np.flatnonzero(np.diff(bag.indptr))
    if filled.size:
        best[filled] = np.maximum.reduceat(bag.data, bag.indptr[filled])
    return np.maximum(full, best) if bag.nnz else np.zeros(len(compiled))


def _bag_rows(index: LexicalIndex, compiled: Sequence[Compiled]) -> Matrix:
    """Interests x docs: each keyword interest's words taken as a bag, ``sum(idf * weight)``
    over the ones that are not generic ("model", "learning"), wherever they occur in the
    paper, with no phrase or coverage condition. Summed over a profile's interests this is
    plain BM25F of the whole profile, the re-ranking evidence (see :mod:`lexical`)."""
    if index.params.bag_weight <= 0:  # re-ranking off: nothing to look up
        return sp.csr_matrix((len(compiled), len(index.docs)), dtype=np.float32)
    generic = index.analyzer.generic_terms
    informative = np.array([key not in generic for key in index.vocab], dtype=np.bool_)
    rows = [
        [(f, float(index.idf[f])) for f in sorted(c.words) if informative[f]]
        if c.kind == "keyword"
        else []
        for c in compiled
    ]
    bag = sp.csr_matrix(compiled_matrix(rows, len(index.vocab)) @ index.weights_t)
    bag.sort_indices()
    # float32: only a bonus in [0, 1] is made of it, and the kernel may hold it dense.
    return sp.csr_matrix(bag, dtype=np.float32)


def _alone_bound(c: Compiled) -> float:
    """The most an interest's one-word-alone credit can be, as a share of ``partial`` x
    its whole BM25F: its most distinctive unit's share of the distinctive idf, squared (a
    hair above, for rounding); 1 for authors and categories (no grades)."""
    if c.kind != "keyword":
        return 1.0
    masses = [m for m, d in zip(c.unit_idf, c.unit_distinct, strict=True) if d]
    total = sum(masses)
    if total <= 0.0:
        return 0.0
    return (max(masses) / total) ** 2 * (1.0 + 1e-9)


def _raw_at(raw: Matrix, s: Matrix) -> npt.NDArray[np.float64]:
    """``raw``'s value at each stored entry of ``s``: its data when ``s`` has its pattern
    (what :func:`_scaled` usually returns), else looked up (sorting both in place)."""
    if s.indices is raw.indices or (
        np.array_equal(raw.indptr, s.indptr) and np.array_equal(raw.indices, s.indices)
    ):
        return np.asarray(raw.data, dtype=np.float64)
    raw.sort_indices()
    s.sort_indices()
    rows = np.repeat(np.arange(s.shape[0], dtype=np.int64), np.diff(s.indptr))
    at = positions(raw, rows, s.indices.astype(np.int64))
    return np.where(at >= 0, raw.data[np.maximum(at, 0)], 0.0)


def _scaled(raw: Matrix, cover: Matrix, power: float) -> Matrix:
    """``raw * cover ** power`` element-wise. Both are products of rows over the same
    features with matrices of one sparsity pattern, so their entries usually line up and
    the product is one array operation (the general sparse product costs 3x more)."""
    if (
        raw.nnz == cover.nnz
        and np.array_equal(raw.indptr, cover.indptr)
        and np.array_equal(raw.indices, cover.indices)
    ):
        return sp.csr_matrix((raw.data * cover.data**power, raw.indices, raw.indptr), raw.shape)
    return sp.csr_matrix(raw.multiply(cover.power(power)))


def _phrase_matches(present: Matrix, compiled: Sequence[Compiled]) -> Matrix:
    """Phrases x docs, 1.0 where the paper has every word and neighbour pair of the phrase."""
    needed = compiled_matrix([[(f, 1.0) for f in c.needed] for c in compiled], present.shape[0])
    counts = sp.csr_matrix(needed @ present)
    sizes = np.diff(needed.indptr)
    row_of = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    counts.data = (counts.data == sizes[row_of]).astype(np.float64)
    counts.eliminate_zeros()
    counts.sort_indices()
    return counts
