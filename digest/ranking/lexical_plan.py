"""The profile side of the lexical ranker, compiled once per :meth:`rank` call.

Many subscribers share interests ("diffusion models", "RL"), so interests are deduplicated
first: each distinct interest is scored against every paper once (a sparse
interests × papers matrix of bounded contributions), and a profile's score is then a sparse
weighted sum of its interests' rows. Exclusions and required phrases are compiled the same
way into phrase-match matrices. Everything here is independent of the chunk size, which is
why chunked and unchunked runs give identical results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from digest.ranking.base import InterestKind, Profile
from digest.ranking.lexical_index import (
    Compiled,
    LexicalIndex,
    Matrix,
    compiled_matrix,
    positions,
)
from digest.ranking.profile_text import split_prefix

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
KIND_CODE = {"keyword": 0, "author": 1, "category": 2}
_BLOCK = 4096  # interests scored per matrix product (bounds the temporary's memory)


@dataclass(frozen=True, eq=False)
class Plan:
    """Compiled profiles. Row ``p`` of ``weights`` holds profile ``p``'s interests."""

    weights: Matrix  # profiles x interests, the interest weights
    slots: IntArray  # aligned with weights.data: position in profile.interests
    labels: IntArray  # aligned with weights.data: id of (interest, weight), for sharing
    spellings: IntArray  # aligned with weights.data: index into ``texts``
    texts: list[str]  # the interests as the profiles spell them
    contrib: Matrix  # interests x docs, unweighted contribution in (0, 1)
    fields: IntArray  # aligned with contrib.data: explanation code (see lexical._FIELDS)
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


def build_plan(index: LexicalIndex, profiles: Sequence[Profile]) -> Plan:
    """Compile every profile's interests, exclusions and requirements."""
    interests, excludes, requires = _Table(index), _Table(index), _Table(index)
    # Interests are flattened and looked up with C-level loops (map, fromiter): 100,000
    # profiles hold ~600,000 interests but only thousands of distinct phrases.
    flat = [interest for profile in profiles for interest in profile.interests]
    keys = [(interest.kind, interest.text) for interest in flat]
    found_uid = {key: interests.uid(*key, scoring=True) for key in dict.fromkeys(keys)}
    uid_of = {key: -1 if uid is None else uid for key, uid in found_uid.items()}
    text_ids = {text: i for i, text in enumerate(dict.fromkeys(text for _, text in keys))}
    counts = np.fromiter(map(len, (p.interests for p in profiles)), np.int64, len(profiles))
    uids = np.fromiter(map(uid_of.__getitem__, keys), np.int64, len(keys))
    usable = uids >= 0
    first = np.repeat(np.cumsum(counts) - counts, counts)
    x_rows: list[list[int]] = [[] for _ in profiles]
    r_rows: list[list[int]] = [[] for _ in profiles]
    blocked = np.zeros(len(profiles), dtype=np.bool_)
    for p, profile in enumerate(profiles):
        if profile.excludes:
            found = (excludes.uid(*split_prefix(e)) for e in profile.excludes)
            x_rows[p] = sorted({u for u in found if u is not None})
        if profile.required:
            required = [requires.uid(*split_prefix(r)) for r in profile.required]
            blocked[p] = None in required
            r_rows[p] = sorted({u for u in required if u is not None})
    weight_matrix, entry_slots, spellings, labels = _interest_rows(
        np.repeat(np.arange(len(profiles), dtype=np.int64), counts)[usable],
        uids[usable],
        np.fromiter((interest.weight for interest in flat), np.float64, len(flat))[usable],
        (np.arange(len(flat), dtype=np.int64) - first)[usable],
        np.fromiter(map(text_ids.__getitem__, (t for _, t in keys)), np.int64, len(keys))[usable],
        (len(profiles), len(interests.compiled)),
    )
    contrib, fields = _contributions(index, interests.compiled)
    return Plan(
        weights=weight_matrix,
        slots=entry_slots,
        labels=labels,
        spellings=spellings,
        texts=list(text_ids),
        contrib=contrib,
        fields=fields,
        excl=_binary_rows(x_rows, len(excludes.compiled)),
        excl_match=_phrase_matches(index, excludes.compiled),
        req=_binary_rows(r_rows, len(requires.compiled)),
        req_match=_phrase_matches(index, requires.compiled),
        n_required=np.array([len(u) for u in r_rows], dtype=np.int64),
        threshold=np.array([-np.inf if p.min_score is None else p.min_score for p in profiles]),
        popularity_weight=np.array([p.popularity_weight for p in profiles], dtype=np.float64),
        popular_only=np.array(
            [not p.interests and p.popularity_weight > 0 for p in profiles], dtype=np.bool_
        ),
        blocked=blocked,
        kinds=np.array([KIND_CODE[c.kind] for c in interests.compiled], dtype=np.int64),
    )


def _interest_rows(
    prof: IntArray,
    uid: IntArray,
    weight: npt.NDArray[np.float64],
    slot: IntArray,
    text: IntArray,
    shape: tuple[int, int],
) -> tuple[Matrix, IntArray, IntArray, IntArray]:
    """Profiles x interests CSR. An interest listed twice (two spellings of one thing)
    counts once, at its largest weight, explained under its first spelling."""
    order = np.lexsort((slot, uid, prof))
    prof, uid, slot, text = prof[order], uid[order], slot[order], text[order]
    weight = weight[order]
    first = np.ones(prof.size, dtype=np.bool_)
    first[1:] = (prof[1:] != prof[:-1]) | (uid[1:] != uid[:-1])
    starts = np.flatnonzero(first)
    best = np.maximum.reduceat(weight, starts) if starts.size else weight[:0]
    prof, uid, slot, text = prof[starts], uid[starts], slot[starts], text[starts]
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(prof, minlength=shape[0]), out=indptr[1:])
    matrix = sp.csr_matrix((best, uid, indptr), shape=shape)
    # A label is (interest, spelling, weight): on the same paper, the same Match.
    _, weight_id = np.unique(best, return_inverse=True)
    key = (uid * (int(text.max(initial=0)) + 1) + text) * (best.size + 1) + weight_id.ravel()
    _, labels = np.unique(key, return_inverse=True)
    return matrix, slot, text, labels.astype(np.int64).ravel()


class _Table:
    """Distinct compiled phrases, keyed by what they match (so spellings share a row)."""

    def __init__(self, index: LexicalIndex) -> None:
        self._index = index
        self._by_text: dict[tuple[str, str], int | None] = {}
        self._by_key: dict[tuple[object, ...], int] = {}
        self.compiled: list[Compiled] = []

    def uid(self, kind: InterestKind, text: str, *, scoring: bool = False) -> int | None:
        """Row id of a phrase; None when it cannot match any paper."""
        cache_key = (kind, text)
        if cache_key in self._by_text:
            return self._by_text[cache_key]
        compiled = self._index.compile(kind, text)
        usable = bool(compiled.score) if scoring else compiled.complete
        uid = None
        if usable:
            key = (compiled.kind, compiled.score if scoring else compiled.needed)
            uid = self._by_key.setdefault(key, len(self.compiled))
            if uid == len(self.compiled):
                self.compiled.append(compiled)
        self._by_text[cache_key] = uid
        return uid


def _binary_rows(rows: Sequence[list[int]], n_cols: int) -> Matrix:
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.fromiter((c for r in rows for c in r), dtype=np.int64, count=int(indptr[-1]))
    return sp.csr_matrix((np.ones(indices.size), indices, indptr), shape=(len(rows), n_cols))


def _contributions(index: LexicalIndex, compiled: Sequence[Compiled]) -> tuple[Matrix, IntArray]:
    """Interests x docs: ``1 - exp(-s / scale)`` where ``s >= floor``, else empty; and,
    aligned with its data, where each match is (title bit + 2 * abstract bit; 4 authors,
    5 categories)."""
    p = index.params
    n_features = len(index.vocab)
    blocks = [sp.csr_matrix((0, len(index.docs)))]
    codes = [np.zeros(0, dtype=np.int64)]
    for start in range(0, len(compiled), _BLOCK):
        part = compiled[start : start + _BLOCK]
        raw = compiled_matrix([c.score for c in part], n_features) @ index.weights_t
        cover = compiled_matrix([c.coverage for c in part], n_features) @ index.present_t
        s = sp.csr_matrix(raw.multiply(cover.power(p.coverage_power)))
        s.sort_indices()
        # Several words never close to each other in the paper: weak evidence.
        near = sp.csr_matrix(
            compiled_matrix([[(f, 1.0) for f in c.pairs] for c in part], n_features)
            @ index.present_t
        )
        near.sort_indices()
        rows = np.repeat(np.arange(len(part), dtype=np.int64), np.diff(s.indptr))
        multiword = np.array([c.multiword for c in part], dtype=np.bool_)[rows]
        far = multiword & (positions(near, rows, s.indices.astype(np.int64)) < 0)
        s.data[far] *= p.scattered
        s.data[s.data < p.floor] = 0.0
        s.eliminate_zeros()
        s.sort_indices()
        s.data = -np.expm1(-s.data / p.scale)
        rows = np.repeat(np.arange(len(part), dtype=np.int64), np.diff(s.indptr))
        cols = s.indices.astype(np.int64)
        words = compiled_matrix([[(f, 1.0) for f in c.words] for c in part], n_features)
        code = np.zeros(s.nnz, dtype=np.int64)
        for bit, field in ((1, index.title_t), (2, index.abstract_t)):
            hits = sp.csr_matrix(words @ field)
            hits.sort_indices()
            code += bit * (positions(hits, rows, cols) >= 0)
        kind = np.array([KIND_CODE[c.kind] for c in part], dtype=np.int64)[rows]
        codes.append(np.where(kind == 0, code, 3 + kind))
        blocks.append(s)
    return sp.csr_matrix(sp.vstack(blocks, format="csr")), np.concatenate(codes)


def _phrase_matches(index: LexicalIndex, compiled: Sequence[Compiled]) -> Matrix:
    """Phrases x docs, 1.0 where the paper has every word and neighbour pair of the phrase."""
    needed = compiled_matrix([[(f, 1.0) for f in c.needed] for c in compiled], len(index.vocab))
    counts = sp.csr_matrix(needed @ index.present_t)
    sizes = np.diff(needed.indptr)
    row_of = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    counts.data = (counts.data == sizes[row_of]).astype(np.float64)
    counts.eliminate_zeros()
    counts.sort_indices()
    return counts
