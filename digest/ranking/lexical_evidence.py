"""How strongly a paper states a keyword interest, graded, with the reason to show.

An interest is a phrase of typed words ("units", :meth:`Analyzer.units`: ``LLM-guided`` and
``RL`` in "LLM-guided RL"). A unit counts only where the paper says all of it (every term
and its inner neighbour pairs): an acronym or a compound names one thing. The evidence a
paper gives for an interest is graded, best first:

0. **phrase** — every word and neighbour pair of the interest, in the title (full credit)
   or in the abstract (``abstract_phrase``), said in one place: all its words within a
   span that leaves at most one other word between neighbours ("online, iterative RLHF"),
   not its pairs gathered from different sentences ("online RL" here, "RLHF" there);
1. **near** — every distinctive unit (one not made only of generic words such as
   "learning", nor a participle naming a relation to the word before it,
   :data:`~digest.ranking.analyzer.RELATION_PARTICIPLES`: "driven" of "principle-driven
   alignment") within ``window`` terms of the others in the title or in one stretch of the
   abstract, but not as the phrase (``near``);
2. **apart** — every distinctive unit, but never close together (``scattered``);
3. **partial** — only some of the units: counted by their idf share of the interest
   (coverage) and by ``scattered`` when no two of its words stand together, but not at all
   when the interest's rarest distinctive unit occurs in no paper of the run, nor when the
   units the paper holds make up less than half of the interest's distinctive idf
   (``PARTIAL_SHARE``: "AI" is the commoner part of "constitutional AI", however many of
   the acronym's features a paper holds); or, when that is more, one distinctive unit
   alone (the interest's rarest word, say): its own BM25F (an acronym's or compound's
   strongest term or inner pair: one word, not the sum of the terms it stands for) times
   ``partial`` times its share of the interest's distinctive idf, squared. A unit's idf
   is its rarity as one thing (its rarest term or inner pair), not the sum of its terms':
   "RLHF" is one word of "online RLHF", not four.

Within a grade, strength is BM25F (idf-weighted, the title counted ``title_boost`` times,
saturating with repetition), times the share of the interest the paper states,
``coverage ** coverage_power`` (see :mod:`digest.ranking.lexical_index`). The grade, the
fields it was found in and which units were there are kept for the explanation ("partly
“graph neural networks” (“neural networks”, title)").

The per-candidate work is a loop compiled with Numba (:func:`grade_kernel`), run on the
(interest, paper) pairs that could still reach the match floor.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from digest.ranking.analyzer import RELATION_PARTICIPLES, fold
from digest.ranking.base import Evidence

if TYPE_CHECKING:
    from digest.ranking.analyzer import Analyzer

log = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
MAX_UNITS = 62  # unit masks are int64 bit sets
CLAUSE_GAP = 3  # positions skipped at a clause boundary: near across one, not across two
GRADES: tuple[Evidence, ...] = ("phrase", "near", "apart", "partial")
GRADE_SHIFT = 3  # explanation code = field bits (title 1, abstract 2) + grade << 3
# Partial evidence by coverage needs the units the paper holds to make up at least this
# share of the interest's distinctive idf: the larger part of what makes it rare.
PARTIAL_SHARE = 0.5


def pair_key(a: str, b: str) -> str:
    """The feature name of two neighbouring terms (unordered)."""
    return f"{a} {b}" if a <= b else f"{b} {a}"


class Units:
    """The units of one interest against an index's vocabulary (see the module docstring)."""

    def __init__(
        self,
        analyzer: Analyzer,
        vocab: Mapping[str, int],
        idf: Callable[[str], float],
        text: str,
    ) -> None:
        typed = analyzer.units(text)[:MAX_UNITS]
        generic = analyzer.generic_terms
        self._unit_of: dict[str, int] = {}
        feats, keys, distinct, masses = [], [], [], []
        for k, (_, terms) in enumerate(typed):
            for term in terms:
                self._unit_of.setdefault(term, k)
            names = list(terms) + [pair_key(a, b) for a, b in itertools.pairwise(terms)]
            feats.append(tuple(vocab.get(name, -1) for name in names))
            rarest = max(terms, key=idf)
            keys.append(vocab.get(rarest, -1))
            distinct.append(
                not all(term in generic for term in terms)
                and not (k > 0 and fold(typed[k][0]) in RELATION_PARTICIPLES)
            )
            # How rare the typed word is as one thing: an acronym or compound stands for
            # several terms, but "RLHF" is not four rare words; papers holding all of it
            # are at most as many as hold its rarest term or inner pair.
            masses.append(max(map(idf, names)))
        self.typed = tuple(surface for surface, _ in typed)
        self.feats = tuple(feats)
        self.keys = tuple(keys)
        self.distinct = tuple(distinct)
        self.idf = tuple(masses)

    def of_word(self, term: str) -> int:
        """Bit mask of the unit a term belongs to (0: none, always counted)."""
        k = self._unit_of.get(term)
        return 0 if k is None else 1 << k

    def of_pair(self, pair: str) -> int:
        a, _, b = pair.partition(" ")
        return self.of_word(a) | self.of_word(b)


class GradeInput(NamedTuple):
    """Keyword interests flattened for :func:`grade_kernel`. Per interest ``i`` its distinct
    features are ``feat[feat_ptr[i]:feat_ptr[i + 1]]``; everything else refers to them by
    local index (position in that slice)."""

    feat_ptr: IntArray
    feat: IntArray
    score_ptr: IntArray
    score_loc: IntArray
    score_val: FloatArray
    score_mask: IntArray
    cover_ptr: IntArray
    cover_loc: IntArray
    cover_val: FloatArray
    cover_mask: IntArray
    needed_ptr: IntArray
    needed_loc: IntArray
    unit_ptr: IntArray  # units of interest i: [unit_ptr[i], unit_ptr[i + 1])
    unit_feat_ptr: IntArray
    unit_feat_loc: IntArray  # -1: a feature no paper has
    unit_key: IntArray  # local index of the rarest term, -1 when no paper has it
    unit_distinct: npt.NDArray[np.bool_]
    unit_idf: FloatArray  # its rarity as one thing: the idf of its rarest term or pair
    multiword: npt.NDArray[np.bool_]
    whole: npt.NDArray[np.bool_]
    complete: npt.NDArray[np.bool_]  # every word and pair occurs in some paper
    rarest_absent: npt.NDArray[np.bool_]  # its rarest distinctive unit is in no paper
    pair_locs_ptr: IntArray  # the interest's neighbour pairs (local indices)
    pair_locs: IntArray
    phrase_ptr: IntArray  # the interest's words (local indices), for the phrase's place
    phrase_loc: IntArray


def grade_input(compiled: Sequence[Any]) -> GradeInput:
    """Flatten ``Compiled`` keyword interests (``lexical_index.Compiled``) for the kernel."""
    out: dict[str, list[Any]] = {name: [] for name in GradeInput._fields}
    for name in ("feat_ptr", "score_ptr", "cover_ptr", "needed_ptr", "unit_ptr"):
        out[name].append(0)
    out["unit_feat_ptr"].append(0)
    out["pair_locs_ptr"].append(0)
    out["phrase_ptr"].append(0)
    for c in compiled:
        local: dict[int, int] = {}

        def loc(f: int, local: dict[int, int] = local) -> int:
            if f < 0:
                return -1
            if f not in local:
                local[f] = len(local)
                out["feat"].append(f)
            return local[f]

        for (f, v), m in zip(c.score, c.score_units, strict=True):
            out["score_loc"].append(loc(f))
            out["score_val"].append(v)
            out["score_mask"].append(m)
        for (f, v), m in zip(c.coverage, c.coverage_units, strict=True):
            out["cover_loc"].append(loc(f))
            out["cover_val"].append(v)
            out["cover_mask"].append(m)
        out["needed_loc"].extend(loc(f) for f in c.needed)
        out["pair_locs"].extend(loc(f) for f in c.pairs)
        out["phrase_loc"].extend(loc(f) for f in c.words)
        units = zip(c.unit_feats, c.unit_keys, c.unit_distinct, c.unit_idf, strict=True)
        rarest: tuple[float, int] | None = None  # (idf, local key) of the rarest distinctive
        for feats, key, distinct, mass in units:
            out["unit_feat_loc"].extend(loc(f) for f in feats)
            out["unit_feat_ptr"].append(len(out["unit_feat_loc"]))
            out["unit_key"].append(loc(key))
            out["unit_distinct"].append(distinct)
            out["unit_idf"].append(mass)
            if distinct and (rarest is None or mass > rarest[0]):  # the first of equals
                rarest = (mass, out["unit_key"][-1])
        out["rarest_absent"].append(rarest is not None and rarest[1] < 0)
        out["multiword"].append(c.multiword)
        out["whole"].append(c.whole)
        out["complete"].append(c.complete)
        out["feat_ptr"].append(len(out["feat"]))
        out["score_ptr"].append(len(out["score_loc"]))
        out["cover_ptr"].append(len(out["cover_loc"]))
        out["needed_ptr"].append(len(out["needed_loc"]))
        out["unit_ptr"].append(len(out["unit_key"]))
        out["pair_locs_ptr"].append(len(out["pair_locs"]))
        out["phrase_ptr"].append(len(out["phrase_loc"]))
    floats = ("score_val", "cover_val", "unit_idf")
    flags = ("unit_distinct", "multiword", "whole", "complete", "rarest_absent")
    arrays: dict[str, Any] = {
        name: np.asarray(
            values, dtype=np.float64 if name in floats else np.bool_ if name in flags else np.int64
        )
        for name, values in out.items()
    }
    return GradeInput(**arrays)


class Graded(NamedTuple):
    """Per candidate: graded strength (0: no evidence), explanation code, units present."""

    value: FloatArray
    code: IntArray
    mask: IntArray


def grade_kernel(  # noqa: PLR0912, PLR0915  # one compiled loop on purpose
    cand_i: IntArray,
    cand_d: IntArray,
    g: GradeInput,
    w_indptr: IntArray,
    w_indices: npt.NDArray[np.int32],
    w_data: FloatArray,
    w_bits: npt.NDArray[np.int8],
    tok_start: IntArray,
    tok_term: npt.NDArray[np.int32],
    tok_pos: npt.NDArray[np.int32],
    power: float,
    abstract_phrase: float,
    near: float,
    scattered: float,
    window: int,
    partial: float,
) -> Graded:
    """Grade every candidate (interest ``cand_i[j]``, paper ``cand_d[j]``); see the module
    docstring for the grades. Plain typed Python, compiled by :func:`kernel`."""
    n = cand_i.size
    value = np.zeros(n, dtype=np.float64)
    code = np.zeros(n, dtype=np.int64)
    mask = np.zeros(n, dtype=np.int64)
    max_feats = 1
    max_units = 1
    for i in range(g.feat_ptr.size - 1):
        max_feats = max(max_feats, g.feat_ptr[i + 1] - g.feat_ptr[i])
        max_units = max(max_units, g.unit_ptr[i + 1] - g.unit_ptr[i])
        max_units = max(max_units, g.phrase_ptr[i + 1] - g.phrase_ptr[i])
    longest = 1
    for k in range(tok_start.size - 1):
        longest = max(longest, tok_start[k + 1] - tok_start[k])
    w = np.zeros(max_feats, dtype=np.float64)
    bits = np.zeros(max_feats, dtype=np.int64)
    present = np.zeros(max_units, dtype=np.bool_)
    hit_pos = np.empty(longest, dtype=np.int64)
    hit_unit = np.empty(longest, dtype=np.int64)
    counts = np.zeros(max_units, dtype=np.int64)
    wanted = np.empty(max_units, dtype=np.int64)

    # The two inner functions below work on the arrays above (Numba compiles them inline).
    def gather(at: int, units: int) -> int:
        """The tokens of field ``at`` (paper * 2 + field) that are one of the ``units``
        wanted terms (-1: none), into ``hit_pos`` / ``hit_unit``, in order; how many."""
        hits = 0
        for t in range(tok_start[at], tok_start[at + 1]):
            term = tok_term[t]
            for k in range(units):
                if wanted[k] == term:
                    hit_pos[hits] = tok_pos[t]
                    hit_unit[hits] = k
                    hits += 1
                    break
        return hits

    def spanned(hits: int, units: int, need: int, limit: int) -> bool:
        """Whether some run of the ``hits`` gathered (each of one of ``units`` units) holds
        ``need`` distinct units within fewer than ``limit`` positions (a sliding window)."""
        for k in range(units):
            counts[k] = 0
        covered = 0
        left = 0
        for right in range(hits):
            k = hit_unit[right]
            if counts[k] == 0:
                covered += 1
            counts[k] += 1
            while covered == need:
                if hit_pos[right] - hit_pos[left] < limit:
                    return True
                k = hit_unit[left]
                counts[k] -= 1
                if counts[k] == 0:
                    covered -= 1
                left += 1
        return False

    for j in range(n):
        i = cand_i[j]
        d = cand_d[j]
        f0 = g.feat_ptr[i]
        nf = g.feat_ptr[i + 1] - f0
        for x in range(nf):  # this paper's weight and fields of each feature (binary search)
            f = g.feat[f0 + x]
            lo = w_indptr[f]
            hi = w_indptr[f + 1]
            while lo < hi:
                mid = (lo + hi) >> 1
                if w_indices[mid] < d:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < w_indptr[f + 1] and w_indices[lo] == d:
                w[x] = w_data[lo]
                bits[x] = w_bits[lo]
            else:
                w[x] = 0.0
                bits[x] = 0
        u0 = g.unit_ptr[i]
        nu = g.unit_ptr[i + 1] - u0
        have = 0
        all_units = True
        n_distinct = 0
        distinct_there = 0
        mass = 0.0  # the interest's distinctive idf (its rarity) ...
        mass_there = 0.0  # ... and the part of it this paper holds
        for k in range(nu):
            ok = True
            for q in range(g.unit_feat_ptr[u0 + k], g.unit_feat_ptr[u0 + k + 1]):
                x = g.unit_feat_loc[q]
                if x < 0 or w[x] <= 0.0:
                    ok = False
                    break
            present[k] = ok
            if ok:
                have |= 1 << k
            else:
                all_units = False
            if g.unit_distinct[u0 + k]:
                n_distinct += 1
                mass += g.unit_idf[u0 + k]
                if ok:
                    distinct_there += 1
                    mass_there += g.unit_idf[u0 + k]
        if g.whole[i] and not all_units:
            continue
        s = 0.0
        for q in range(g.score_ptr[i], g.score_ptr[i + 1]):
            m = g.score_mask[q]
            x = g.score_loc[q]
            if (m & have) == m and x >= 0:
                s += g.score_val[q] * w[x]
        cover = 0.0
        for q in range(g.cover_ptr[i], g.cover_ptr[i + 1]):
            m = g.cover_mask[q]
            x = g.cover_loc[q]
            if (m & have) == m and x >= 0:
                cover += g.cover_val[q] * min(w[x], 1.0)
        if s <= 0.0:
            continue
        s *= cover**power
        in_title = g.complete[i] and g.needed_ptr[i + 1] > g.needed_ptr[i]
        in_abstract = in_title
        for q in range(g.needed_ptr[i], g.needed_ptr[i + 1]):
            x = g.needed_loc[q]
            b = bits[x] if x >= 0 else 0
            in_title = in_title and (b & 1) != 0
            in_abstract = in_abstract and (b & 2) != 0
        if (in_title or in_abstract) and g.multiword[i]:
            # The phrase is said in one place: all its words within a span that leaves at
            # most one other word between neighbours (a neighbour pair one word apart is a
            # phrase's pair too), not its pairs gathered from different sentences ("online
            # RL ..." and "RLHF" elsewhere do not say "online RLHF").
            p0 = g.phrase_ptr[i]
            np_ = g.phrase_ptr[i + 1] - p0
            for field in range(2):
                if not (in_title if field == 0 else in_abstract):
                    continue
                for k in range(np_):
                    x = g.phrase_loc[p0 + k]
                    wanted[k] = g.feat[f0 + x] if x >= 0 else -1
                hits = gather(2 * d + field, np_)
                said = spanned(hits, np_, np_, 2 * np_ - 1)
                if field == 0:
                    in_title = said
                else:
                    in_abstract = said
        fields = 0
        grade = 3
        factor = 1.0
        if in_title or in_abstract:
            grade = 0
            fields = (1 if in_title else 0) | (2 if in_abstract else 0)
            factor = 1.0 if in_title else abstract_phrase
        else:
            found = 0
            if n_distinct >= 2 and distinct_there == n_distinct:
                for k in range(nu):
                    key = g.unit_key[u0 + k]
                    wanted[k] = g.feat[f0 + key] if g.unit_distinct[u0 + k] and key >= 0 else -1
                for field in range(2):  # all distinctive units within the window?
                    hits = gather(2 * d + field, nu)
                    if spanned(hits, nu, n_distinct, window):
                        found |= 1 << field
            if found:
                grade = 1
                fields = found
                factor = near
            elif all_units or (n_distinct >= 2 and distinct_there == n_distinct):
                grade = 2  # every (distinctive) word, but not together
                factor = scattered if g.multiword[i] else 1.0
            elif g.rarest_absent[i] or mass_there < PARTIAL_SHARE * mass:
                # Its rarest word is in no paper of the run ("forecasting" of "time series
                # forecasting"), or the paper holds only the lesser part of what makes the
                # interest rare ("AI" of "constitutional AI", "NLP" of "legal NLP"): the
                # commoner words do not say the paper is about it. Each still counts as one
                # word alone, below.
                s = 0.0
            else:
                paired = not g.multiword[i]
                for q in range(g.pair_locs_ptr[i], g.pair_locs_ptr[i + 1]):
                    x = g.pair_locs[q]
                    if x >= 0 and w[x] > 0.0:
                        paired = True
                factor = 1.0 if paired else scattered
            # Or one distinctive word alone, if that is more: its own BM25F (a typed
            # word's strongest feature: "NLP" alone is one word, not the five features
            # of "natural language processing"), times its share of the interest's
            # distinctive idf, squared ("skill" of "skill learning": all of it; "protein"
            # of "protein structure determination": a third).
            for k in range(nu):
                if not (present[k] and g.unit_distinct[u0 + k]) or mass <= 0.0:
                    continue
                alone = 0.0
                for q in range(g.score_ptr[i], g.score_ptr[i + 1]):
                    x = g.score_loc[q]
                    if g.score_mask[q] == 1 << k and x >= 0:
                        alone = max(alone, g.score_val[q] * w[x])
                alone *= partial * (g.unit_idf[u0 + k] / mass) ** 2
                if alone > s * factor:
                    s = alone
                    factor = 1.0
            if grade >= 2:  # where the units that are there were said
                for k in range(nu):
                    key = g.unit_key[u0 + k]
                    if present[k] and key >= 0 and (g.unit_distinct[u0 + k] or fields == 0):
                        fields |= bits[key] & 3
        value[j] = s * factor
        code[j] = fields + (grade << 3)
        mask[j] = have
    return Graded(value, code, mask)


GradeKernel = Callable[..., Graded]
_compiled: GradeKernel | None = None


def kernel() -> GradeKernel:
    """:func:`grade_kernel` compiled (once per process; from Numba's disk cache when it can)."""
    global _compiled  # noqa: PLW0603  # one compiled function per process
    if _compiled is None:
        import numba  # noqa: PLC0415  # ~0.2 s and ~100 MB: only when a ranking runs

        try:
            compiled = numba.njit(cache=True, nogil=True)(grade_kernel)
        except RuntimeError as exc:  # no writable cache location: compile every process
            log.info("numba cannot cache the grading kernel (%s); compiling in memory", exc)
            compiled = numba.njit(nogil=True)(grade_kernel)
        _compiled = compiled
    return _compiled
