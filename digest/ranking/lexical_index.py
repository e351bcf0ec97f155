"""The paper side of the lexical ranker: features, BM25F weights, and compiled interests.

Features are words (``pretrain``), word pairs (``learn reinforc``: two words next to each
other, or one word apart at half weight, after stop words are dropped, inside one clause
(:meth:`~digest.ranking.analyzer.Analyzer.segments`: never across a sentence end or an
"and"); unordered, so "structure of proteins" is close to "protein structure"), author keys
(``@lecun y``) and category keys (``#cs.lg``). A paper's weight for a feature is BM25F: the
per-field counts are length normalised (``b`` per field), the title counts ``title_boost``
times, the sum is saturated with ``k1``. All of it is one sparse matrix, built once per run.

An interest is compiled into a sparse row over the same features: ``idf`` for its words,
``pair_weight * idf`` for its neighbour pairs (phrase credit), a fixed strength for an author
or category. The raw score of an interest for a paper, ``s``, is that row times the paper's
weights. ``s`` is then scaled by ``coverage ** coverage_power`` (the idf share of the
interest's words and neighbour pairs the paper contains), so "neural networks" alone is a
weak match for "graph neural networks", and "model-based RL" for a paper on RL that only
says "model" somewhere; and by ``scattered`` when a several-word interest has no two of its
words close together in the paper. Coverage counts each feature by how fully the paper
states it: its weight, capped at 1, which is exactly one mention in an abstract of average
length; a pair seen only one word apart, or a word said once in a long abstract, covers its
share in part, so a passing, partial mention of a phrase is not taken for the phrase. An
interest typed as one word that stands for several (an acronym, a hyphenated compound:
``Compiled.whole``) names one thing and scores only on papers holding all of it.

An interest *matches* a paper when ``s >= floor``; it then contributes
``weight * (1 - exp(-s / scale))``: bounded by its weight, saturating, so one frequent
keyword cannot drown the others.

IDF is computed on the papers being ranked and shrunk towards a prior (``prior_docs``
pseudo-papers), so a small or one-topic batch (a daily listing about RL) does not turn
"reinforcement" into a stop word; the prior is low for :data:`~digest.ranking.analyzer.
GENERIC_WORDS` ("model", "learning"), which therefore never match on their own.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from digest.ranking.analyzer import Analyzer
from digest.ranking.base import InterestKind, RankDoc
from digest.ranking.lexical_evidence import CLAUSE_GAP, Units, pair_key

# scipy.sparse ships no type information; this names what the values are.
Matrix: TypeAlias = Any  # scipy.sparse.csr_matrix
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LexicalParams:
    """Tuning knobs of the lexical ranker; the defaults are what the tests calibrate."""

    title_boost: float = 1.5
    k1: float = 1.2
    b_title: float = 0.3
    b_abstract: float = 0.75
    pair_weight: float = 0.5  # phrase credit of a neighbour pair, relative to a word
    skip_pair_tf: float = 0.5  # a pair one word apart counts this much
    # Evidence grades (lexical_evidence): a phrase in the title counts fully, in the abstract
    # ``abstract_phrase``; all distinctive words within ``window`` terms of each other count
    # ``near``; anything less (words far apart, some of the words) ``scattered`` when none of
    # its neighbour pairs is there.
    abstract_phrase: float = 0.75
    near: float = 0.75
    window: int = 8
    scattered: float = 0.5
    partial: float = 0.5  # the rarest words alone: BM25F x this x (their idf share) ** 2
    prior_docs: float = 100.0
    prior_idf: float = 3.0
    generic_idf: float = 0.5
    coverage_power: float = 2.0
    pair_coverage: float = 1.0  # weight of neighbour pairs in coverage, relative to words
    floor: float = 1.5  # raw score below which an interest does not match
    # A digest with at least one match but fewer than ``top`` is completed with papers
    # whose evidence reaches only this (listed after the matches; ``>= floor``: never).
    fill_floor: float = 0.25
    scale: float = 10.0
    author_strength: float = 10.0
    category_strength: float = 5.0
    popularity_ref: float = 100.0  # this many upvotes add exactly ``popularity_weight``
    # Across interests: the strongest counts whole, the others (each at least
    # ``substantial``) add a bonus that saturates at ``bonus`` (see lexical_kernel).
    bonus: float = 0.15
    substantial: float = 0.35
    # The reader's ratings (lexical_feedback): likeness to the closest paper rated up adds
    # at most ``like_weight``, to the closest rated down takes at most ``dislike_weight``;
    # likeness (a rated paper's features' share) counts from ``like_from``, fully at
    # ``like_full``. What likeness adds is divided by ``1 + v / like_damp``, ``v`` the
    # interests' own score for the paper (0 disables): strong matches move little.
    like_weight: float = 0.45
    dislike_weight: float = 0.15
    like_from: float = 0.15
    like_full: float = 0.6
    like_damp: float = 2.0
    bag_weight: float = 1.0  # re-ranking by whole-profile word evidence (0: off)
    bag_spread: float = 0.3  # weight of the other interests' word shares in it
    rerank_depth: int = 30  # how many of the best interest matches are re-ranked


@dataclass(frozen=True, slots=True)
class Compiled:
    """An interest or phrase as feature ids: scoring row, coverage row, phrase check."""

    kind: InterestKind
    score: tuple[tuple[int, float], ...]
    coverage: tuple[tuple[int, float], ...]
    words: tuple[int, ...]  # seen word/author/category features, for explanations
    pairs: tuple[int, ...]  # seen pair features (proximity evidence)
    multiword: bool  # has neighbouring words, so its words are expected close together
    needed: tuple[int, ...]  # every feature a phrase match needs (seen ones)
    complete: bool  # False when a needed feature occurs in no paper
    # One typed word that stands for several terms (an acronym, a hyphenated compound):
    # one concept, so a paper must hold all of it (every term and neighbour pair) to match.
    whole: bool = False
    # Its typed words ("units", Analyzer.units): the features each needs (its terms and
    # inner pairs; -1 for one no paper has), its rarest term (-1: none), whether it is
    # distinctive (not only generic words), as typed; and aligned with ``score`` and
    # ``coverage``, the units (bit mask) each feature belongs to. A feature counts only
    # where its units are said whole: "VLM reward" is not "reward model".
    unit_feats: tuple[tuple[int, ...], ...] = ()
    unit_keys: tuple[int, ...] = ()
    unit_distinct: tuple[bool, ...] = ()
    unit_words: tuple[str, ...] = ()
    unit_idf: tuple[float, ...] = ()
    score_units: tuple[int, ...] = ()
    coverage_units: tuple[int, ...] = ()


class Views(NamedTuple):
    """Features x docs views of a :class:`LexicalIndex`, all with its sparsity pattern."""

    present: Matrix  # 1.0 where the feature occurs
    held: Matrix  # how fully the paper states it: min(weight, 1)
    title: Matrix  # 1.0 where it occurs in the title
    abstract: Matrix  # 1.0 where it occurs in the abstract


@dataclass(frozen=True, eq=False)
class LexicalIndex:
    """Prepared papers: feature vocabulary, BM25F weights, presence, idf."""

    docs: Sequence[RankDoc]
    analyzer: Analyzer
    params: LexicalParams
    vocab: dict[str, int]
    weights_t: Matrix  # features x docs, BM25F saturated weights
    # Aligned with weights_t.data: 1 if the feature occurs in the title, + 2 in the abstract
    # (0: an author or category key). The 0/1 and capped views below are built from these
    # two on demand: kept as four matrices they held 40 MB more at 2,000 papers.
    field_bits: npt.NDArray[np.int8]
    idf: FloatArray
    popularity: FloatArray  # log1p(upvotes) / log1p(popularity_ref), 0 when unknown
    # The papers' words in order, for "near each other": field f of paper d is
    # tokens[token_starts[2 * d + f] : token_starts[2 * d + f + 1]], at token_pos (a clause
    # boundary skips CLAUSE_GAP positions).
    tokens: npt.NDArray[np.int32]
    token_pos: npt.NDArray[np.int32]
    token_starts: npt.NDArray[np.int64]
    # Compiled interests by (kind, text), filled by ``compiled`` (bounded by the distinct
    # interests ranked against this index).
    memo: dict[tuple[str, str], Compiled] = field(default_factory=dict, init=False, repr=False)

    def views(self) -> Views:
        """The presence, capped weight and field matrices (features x docs), built now;
        :func:`~digest.ranking.lexical_plan.build_plan` takes them once per run."""
        w = self.weights_t

        def like(data: FloatArray) -> Matrix:
            if data.all():  # the weights' own pattern: share its index arrays
                return sp.csr_matrix((data, w.indices, w.indptr), shape=w.shape)
            # Dropping the zeros compacts the index arrays in place: on copies.
            matrix = sp.csr_matrix((data, w.indices.copy(), w.indptr.copy()), shape=w.shape)
            matrix.eliminate_zeros()
            return matrix

        bits = self.field_bits
        return Views(
            present=like(np.ones(w.nnz)),
            # One plain mention in an abstract of average length weighs exactly 1 (tf = 1,
            # norm = 1); less (a long abstract, a pair one word apart) is partial evidence.
            held=like(np.minimum(w.data, 1.0)),
            title=like((bits & 1).astype(np.float64)),
            abstract=like((bits >> 1 & 1).astype(np.float64)),
        )

    def compiled(self, kind: InterestKind, text: str) -> Compiled:
        """:meth:`compile`, remembered for this index (a run that ranks twice, to complete
        short digests, compiles each interest once)."""
        key = (kind, text)
        found = self.memo.get(key)
        if found is None:
            found = self.memo[key] = self.compile(kind, text)
        return found

    def compile(self, kind: InterestKind, text: str) -> Compiled:
        """Compile an interest (or exclusion/required phrase) against this vocabulary."""
        p = self.params
        if kind != "keyword":
            keys = (
                self.analyzer.author_keys(text, query=True)
                if kind == "author"
                else (self.analyzer.category_key(text),)
            )
            strength = p.author_strength if kind == "author" else p.category_strength
            ids = tuple(self.vocab[k] for k in keys if k in self.vocab)
            return Compiled(
                kind=kind,
                score=tuple((i, strength) for i in ids),
                coverage=tuple((i, 1.0) for i in ids),
                words=ids,
                pairs=(),
                multiword=False,
                needed=ids,
                complete=len(ids) == len(keys) > 0,
            )
        segments = self.analyzer.segments(text, query=True)
        words = list(dict.fromkeys(itertools.chain.from_iterable(segments)))
        pairs = list(
            dict.fromkeys(
                pair_key(a, b) for terms in segments for a, b in itertools.pairwise(terms)
            )
        )
        units = Units(self.analyzer, self.vocab, self.feature_idf, text)
        word_idf = [self.feature_idf(w) for w in words]
        pair_idf = [p.pair_weight * self.feature_idf(q) for q in pairs]
        # Coverage counts the neighbour pairs too (at ``pair_coverage``): the paper must hold
        # the phrase, not just its rarest word ("model-based RL" is not any RL paper).
        total = (sum(word_idf) + p.pair_coverage * sum(pair_idf)) or 1.0
        score = [
            (self.vocab[w], i, units.of_word(w))
            for w, i in zip(words, word_idf, strict=True)
            if w in self.vocab
        ]
        seen_words = tuple(f for f, _, _ in score)
        pair_score = [
            (self.vocab[q], i, units.of_pair(q))
            for q, i in zip(pairs, pair_idf, strict=True)
            if q in self.vocab
        ]
        coverage = [(f, i / total, m) for f, i, m in score]
        coverage += [
            (f, p.pair_coverage * i / total, m) for f, i, m in pair_score if p.pair_coverage
        ]
        score = sorted(score + pair_score)
        coverage.sort()
        needed = [self.vocab[f] for f in words + pairs if f in self.vocab]
        return Compiled(
            kind="keyword",
            score=tuple((f, v) for f, v, _ in score),
            coverage=tuple((f, v) for f, v, _ in coverage),
            words=seen_words,
            pairs=tuple(sorted(self.vocab[q] for q in pairs if q in self.vocab)),
            multiword=bool(pairs),  # "math and code": two words, but no phrase to look for
            needed=tuple(sorted(needed)),
            complete=len(needed) == len(words) + len(pairs) > 0,
            whole=len(words) > 1 and len(units.typed) == 1,
            unit_feats=units.feats,
            unit_keys=units.keys,
            unit_distinct=units.distinct,
            unit_words=units.typed,
            unit_idf=units.idf,
            score_units=tuple(m for _, _, m in score),
            coverage_units=tuple(m for _, _, m in coverage),
        )

    def feature_idf(self, feature: str) -> float:
        """The idf of a feature (a word, a pair), or its prior idf when no paper has it."""
        fid = self.vocab.get(feature)
        if fid is not None:
            return float(self.idf[fid])
        unseen = _shrunk_idf(np.zeros(1), len(self.docs), self._prior(feature), self.params)
        return float(unseen[0])

    def _prior(self, feature: str) -> float:
        # Only a single generic word is common a priori; a pair of them ("based model") is not.
        p = self.params
        return p.generic_idf if feature in self.analyzer.generic_terms else p.prior_idf


def build_index(docs: Sequence[RankDoc], analyzer: Analyzer, params: LexicalParams) -> LexicalIndex:
    """Analyse the papers once and build the sparse matrices the ranker multiplies."""
    vocab: dict[str, int] = {}
    fields: list[tuple[list[int], list[int], list[float]]] = [([], [], []), ([], [], [])]
    meta: tuple[list[int], list[int]] = ([], [])
    lengths = np.zeros((2, len(docs)))
    tokens: list[int] = []
    token_pos: list[int] = []
    token_starts = [0]
    for d, doc in enumerate(docs):
        for f, text in enumerate((doc.title, doc.abstract)):
            segments = analyzer.segments(text)
            lengths[f, d] = sum(map(len, segments))
            counts = _feature_counts(segments, params.skip_pair_tf)
            rows, cols, vals = fields[f]
            rows.extend([d] * len(counts))
            cols.extend(vocab.setdefault(k, len(vocab)) for k in counts)
            vals.extend(counts.values())
            at = 0
            for clause in segments:  # the words in order, a gap at each clause boundary
                tokens.extend(map(vocab.__getitem__, clause))
                token_pos.extend(range(at, at + len(clause)))
                at += len(clause) + CLAUSE_GAP
            token_starts.append(len(tokens))
        keys = {k for a in doc.authors for k in analyzer.author_keys(a)}
        keys.update(analyzer.category_key(c) for c in doc.categories if c.strip())
        meta[0].extend([d] * len(keys))
        meta[1].extend(vocab.setdefault(k, len(vocab)) for k in sorted(keys))
    shape = (len(docs), len(vocab))
    title, abstract = (_csr(vals, rows, cols, shape) for rows, cols, vals in fields)
    weights = (
        sp.diags(params.title_boost / _norm(lengths[0], params.b_title)) @ title
        + sp.diags(1.0 / _norm(lengths[1], params.b_abstract)) @ abstract
    ).tocsr()
    weights.data = weights.data * (params.k1 + 1) / (weights.data + params.k1)
    weights = (weights + _csr([1.0] * len(meta[0]), *meta, shape)).tocsr()
    weights.sort_indices()
    weights_t = weights.T.tocsr()
    weights_t.sort_indices()
    weights_t.prune()  # arrays exactly nnz long: the views share them
    # Where each feature occurs: 4 everywhere it does (so that the pattern is exactly the
    # weights'), + 1 in the title, + 2 in the abstract.
    present = weights.copy()
    present.data[:] = 4.0
    bits_t = (present + _binary(title) + 2 * _binary(abstract)).T.tocsr()
    bits_t.sort_indices()
    bits_t.prune()
    if not np.array_equal(bits_t.indices, weights_t.indices):  # an invariant, checked cheaply
        raise AssertionError("field bits are not aligned with the weights")
    df = np.bincount(weights.indices, minlength=len(vocab)).astype(np.float64)
    generic = analyzer.generic_terms
    prior = np.array([params.generic_idf if k in generic else params.prior_idf for k in vocab])
    ups = np.array([max(doc.upvotes or 0, 0) for doc in docs], dtype=np.float64)
    return LexicalIndex(
        docs=tuple(docs),
        analyzer=analyzer,
        params=params,
        vocab=vocab,
        weights_t=weights_t,
        field_bits=(bits_t.data - 4).astype(np.int8),
        idf=_shrunk_idf(df, len(docs), prior, params),
        popularity=np.log1p(ups) / math.log1p(params.popularity_ref),
        tokens=np.asarray(tokens, dtype=np.int32),
        token_pos=np.asarray(token_pos, dtype=np.int32),
        token_starts=np.asarray(token_starts, dtype=np.int64),
    )


def compiled_matrix(rows: Sequence[Iterable[tuple[int, float]]], n_features: int) -> Matrix:
    """Stack compiled rows (sorted ``(feature, value)`` pairs) into a CSR matrix."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indices: list[int] = []
    data: list[float] = []
    for r, row in enumerate(rows):
        for f, v in row:
            indices.append(f)
            data.append(v)
        indptr[r + 1] = len(indices)
    return sp.csr_matrix(
        (np.array(data, dtype=np.float64), np.array(indices, dtype=np.int64), indptr),
        shape=(len(rows), n_features),
    )


def positions(
    matrix: Matrix, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Index into ``matrix.data`` of each ``(rows[i], cols[i])``, -1 where absent.

    ``matrix`` must have sorted indices (row-major order then makes the keys ascending).
    """
    if matrix.nnz == 0:
        return np.full(rows.size, -1, dtype=np.int64)
    n_cols = matrix.shape[1]
    keys = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    keys = keys * n_cols + matrix.indices
    wanted = rows * n_cols + cols
    pos = np.minimum(np.searchsorted(keys, wanted), keys.size - 1)
    return np.where(keys[pos] == wanted, pos, -1)


def _feature_counts(segments: list[list[str]], skip_tf: float) -> dict[str, float]:
    """Term frequencies of a field's words, and of its word pairs inside each clause."""
    counts: dict[str, float] = dict(Counter(itertools.chain.from_iterable(segments)))
    neighbours = (pair_key(a, b) for terms in segments for a, b in itertools.pairwise(terms))
    counts.update(Counter(neighbours))
    for terms in segments:
        for a, b in zip(terms, terms[2:], strict=False):
            key = pair_key(a, b)
            counts[key] = counts.get(key, 0.0) + skip_tf
    return counts


def _csr(
    vals: Sequence[float], rows: Sequence[int], cols: Sequence[int], shape: tuple[int, int]
) -> Matrix:
    matrix = sp.csr_matrix((np.asarray(vals, dtype=np.float64), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def _binary(matrix: Matrix) -> Matrix:
    out = matrix.copy()
    out.data[:] = 1.0
    return out


def _norm(lengths: FloatArray, b: float) -> FloatArray:
    mean = float(lengths.mean()) if lengths.size else 0.0
    relative = lengths / mean if mean > 0 else np.ones_like(lengths)
    return 1.0 - b + b * relative


def _shrunk_idf(
    df: FloatArray, n_docs: int, prior: FloatArray | float, params: LexicalParams
) -> FloatArray:
    corpus = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    weight = n_docs / (n_docs + params.prior_docs)
    return np.asarray(weight * corpus + (1 - weight) * np.asarray(prior), dtype=np.float64)
