"""The lexical ranker: BM25F over title and abstract, phrase-aware, all profiles at once.

How a paper is scored for a profile (details in :mod:`digest.ranking.lexical_index` and
:mod:`digest.ranking.lexical_evidence`):

- each interest's evidence in the paper is graded: its phrase in the title, in the abstract,
  all its distinctive words near each other, the same words apart, or only some of them
  (its rarest word alone, say; never its commoner words alone when its rarest is in no
  paper of the run). A typed word counts only where it is said whole ("VLM" is
  "vision-language model", never just "model"); a hyphenated compound of plain,
  distinctive words is a typed word per part ("child-directed"). The grade scales the
  interest's BM25F score ``s`` (idf-weighted, title counted 1.5 times, phrase credit for
  neighbouring words, scaled down when only some of its words occur). An interest matches
  when ``s >= 1.5``: roughly one mention of a word found in at most a fifth of the papers;
  it then contributes
  ``weight * (1 - exp(-s / 10))``: between ``0.14 * weight`` and ``weight`` (a phrase in
  the title and said again in the abstract: about half its weight); an author match
  ``0.63 * weight``, a category ``0.39 * weight``;
- the interests are alternatives: the paper's score is its *strongest* interest's
  contribution, plus a bonus for the others that are themselves substantial (each at least
  ``substantial``, 0.35, about a phrase in a title) which saturates at ``bonus`` (0.15).
  One interest squarely met beats two mentioned in passing;
- the reader's ratings (:mod:`digest.ranking.lexical_feedback`) add up to ``like_weight``
  for likeness to a paper rated up and take up to ``dislike_weight`` for likeness to one
  rated down; at most ``max(1, top // 4)`` picks may come from likeness alone, or as many
  as fill the empty slots of a digest with fewer than ``top`` matches, and never more than
  the number of papers rated up;
- with ``popularity_weight > 0`` the paper also gets
  ``popularity_weight * log1p(upvotes) / log1p(100)`` (100 upvotes add exactly the weight);
- the score of a paper no interest matches (nor likeness brings) is zero: it is never
  picked, except for a profile with no interests and a popularity weight, which gets the
  most upvoted papers.

A paper is picked when at least one interest matches and, if the profile sets
``min_score``, the score (popularity and ratings included) reaches it; a paper matching an
exclusion, or missing a required phrase, is never picked, whatever the ratings say. Ties are
broken by paper index.

The best ``rerank_depth`` (30) picks by that score are then re-ranked by the profile's words
as one bag: for each interest, BM25F of its words (generic ones left out) wherever they
occur in the paper, as a share of what a paper saying all of them in its title and abstract
gets; the largest share counts whole, the others at ``bag_spread`` (0.3), and the result,
scaled into [0, 1], times ``bag_weight`` (1.0) is added. It depends only on the profile, the
paper and the run's word statistics, and never lifts a paper below the depth above one
inside it. Evidence decides *whether* a paper is relevant (and says why); the bag breaks the
many near-ties among matches by how much of the profile the paper talks about. Measured on
labelled profiles (docs/benchmarks.md, "Relevance"), it is what lets the ranker beat BM25 on
profiles it was not tuned on. ``Pick.score`` includes the bonus.

Profiles are scored in chunks (:mod:`digest.ranking.lexical_chunk`), so memory is bounded
by the chunk size; every chunk is computed from the whole-run plan alone, so results are
identical for any chunk size. The per-profile loop (scores, filters, top picks,
explanations) is compiled with Numba (:mod:`digest.ranking.lexical_kernel`). The picks'
:class:`~digest.ranking.base.Match` objects are built once per run and shared. A run's picks
stay arrays (:meth:`LexicalRanker.ranking`: a :class:`~digest.ranking.base.Ranking`, about
25 bytes per pick where a ``Pick`` object with its score and tuple took over 100);
:meth:`LexicalRanker.rank` makes the ``Pick`` objects from them. With ``threads=2`` one
thread runs the next chunk through the kernel (which releases the GIL) while the calling
thread compacts the previous chunk and builds its new matches (docs/benchmarks.md,
"Scale").
"""

from __future__ import annotations

import gc
import itertools
import operator
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from digest.ranking.analyzer import Analyzer
from digest.ranking.base import (
    EligibleFn,
    Evidence,
    Field,
    Interest,
    Match,
    Pick,
    Prepared,
    Profile,
    RankDoc,
    Ranking,
)
from digest.ranking.lexical_chunk import ChunkPicks, IntArray, RunContext, chunk_picks
from digest.ranking.lexical_evidence import GRADE_SHIFT, GRADES
from digest.ranking.lexical_index import LexicalIndex, LexicalParams, build_index
from digest.ranking.lexical_plan import Plan, build_plan
from digest.ranking.memory import release_free_memory

# Explanation by code: a keyword's is its field bits (title 1, abstract 2) + its evidence
# grade << 3 (lexical_evidence.GRADES); 4 author, 5 category, 6 similar in meaning only
# (the semantic ranker), 7 a paper like one rated up.
_FIELD_BITS: tuple[tuple[Field, ...], ...] = ((), ("title",), ("abstract",), ("title", "abstract"))
_EXPLAIN: tuple[tuple[tuple[Field, ...], Evidence], ...] = tuple(
    (_FIELD_BITS[code & 3], GRADES[code >> GRADE_SHIFT])
    if code & 4 == 0 and code >> GRADE_SHIFT < len(GRADES)
    else (("authors",), "phrase")
    if code == 4
    else (("categories",), "phrase")
    if code == 5
    else (("meaning",), "meaning")
    if code == 6
    else ((), "liked")
    for code in range(len(GRADES) << GRADE_SHIFT)
)


def explain(code: int) -> tuple[tuple[Field, ...], Evidence]:
    """The fields and the kind of evidence an explanation code stands for."""
    return _EXPLAIN[code]


_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
# Up to this many possible matches (4 bytes each), Match objects are shared run-wide.
MATCH_CACHE = 4_000_000
_LOOKAHEAD = 1  # chunks computed ahead of the one being compacted (bounds memory)


class LexicalRanker:
    """Sparse BM25F ranker (see the module docstring for the score scale).

    ``threads``: 1 computes everything in the calling thread; 2 overlaps the kernel's work
    on one chunk with compacting the previous one and building its matches; the default is
    2 on a machine with several cores, else 1.
    Results are the same.
    """

    name = "lexical"

    def __init__(
        self,
        *,
        params: LexicalParams | None = None,
        analyzer: Analyzer | None = None,
        threads: int | None = None,
    ) -> None:
        if threads is None:
            threads = 2 if (os.cpu_count() or 1) > 1 else 1
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.params = params or LexicalParams()
        self.threads = threads
        self._analyzer = analyzer

    def prepare(self, docs: Sequence[RankDoc]) -> LexicalIndex:
        """Analyse the papers and build the BM25F feature matrix."""
        index = build_index(docs, self._analyzer or Analyzer(), self.params)
        release_free_memory()  # the analysis's temporaries (see digest.ranking.memory)
        return index

    def rank(
        self,
        prepared: Prepared,
        profiles: Sequence[Profile],
        *,
        top_n: int | Sequence[int],
        eligible: EligibleFn | None = None,
        chunk_size: int = 2048,
        blend: Callable[[Plan], Plan] | None = None,
    ) -> list[list[Pick]]:
        """Top picks per profile, best first; identical results for any ``chunk_size``.

        ``eligible`` is called once per chunk, in order, possibly from a worker thread.
        ``blend`` may change the compiled plan's interest x paper contributions before
        scoring (the semantic ranker adds similarities there).
        """
        ranking = self.ranking(
            prepared,
            profiles,
            top_n=top_n,
            eligible=eligible,
            chunk_size=chunk_size,
            blend=blend,
        )
        return ranking.lists()

    def ranking(
        self,
        prepared: Prepared,
        profiles: Sequence[Profile],
        *,
        top_n: int | Sequence[int],
        eligible: EligibleFn | None = None,
        chunk_size: int = 2048,
        blend: Callable[[Plan], Plan] | None = None,
    ) -> Ranking:
        """What :meth:`rank` returns, as arrays (a run's picks without an object each)."""
        if not isinstance(prepared, LexicalIndex):
            raise TypeError(f"LexicalRanker cannot rank {type(prepared).__name__}")
        if chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        tops = _top_counts(top_n, len(profiles))
        if not profiles:
            return Ranking.empty(0)
        with _gc_paused():
            plan = build_plan(prepared, profiles)
            if blend is not None:
                plan = blend(plan)
            release_free_memory()  # the plan's temporaries
            context = RunContext.build(prepared, plan, tops, eligible)
            bounds = [
                (start, min(start + chunk_size, len(profiles)))
                for start in range(0, len(profiles), chunk_size)
            ]
            explanations = _Explanations(plan, context.n_matches)
            parts = [explanations.chunk(arrays) for arrays in self._chunks(context, bounds)]
            matches = explanations.matches
            # The plan (100 MB or more at 100,000 profiles) is freed before the parts are
            # joined, so that it and two copies of the picks never coexist.
            del explanations, context, plan
            release_free_memory()
            return _joined(parts, matches)

    def _chunks(self, context: RunContext, bounds: list[tuple[int, int]]) -> Iterator[ChunkPicks]:
        """Each chunk's arrays, in order; computed ahead in a worker thread if enabled."""
        if self.threads == 1 or len(bounds) == 1:
            for start, stop in bounds:
                yield chunk_picks(context, start, stop)
            return
        # One worker keeps the calls to ``eligible`` sequential and in order.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-rank") as pool:
            todo = iter(bounds)
            pending: deque[Future[ChunkPicks]] = deque(
                pool.submit(chunk_picks, context, *b) for b in itertools.islice(todo, _LOOKAHEAD)
            )
            while pending:
                arrays = pending.popleft().result()
                following = next(todo, None)
                if following is not None:
                    pending.append(pool.submit(chunk_picks, context, *following))
                yield arrays


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


class _Part(NamedTuple):
    """One chunk's picks, compact: what a :class:`Ranking` is made of."""

    row_bounds: IntArray
    docs: npt.NDArray[np.int32]
    scores: npt.NDArray[np.float64]
    match_bounds: IntArray
    match_ids: npt.NDArray[np.int32]


def _joined(parts: list[_Part], matches: list[Match]) -> Ranking:
    """The chunks' picks as one :class:`Ranking` (each chunk's bounds start at 0); ``parts``
    is emptied, each kind of array freed as soon as it is joined."""
    picks = np.cumsum([0] + [part.docs.size for part in parts], dtype=np.int64)[:-1].tolist()
    refs = np.cumsum([0] + [part.match_ids.size for part in parts], dtype=np.int64)[:-1].tolist()
    columns = [list(column) for column in zip(*parts, strict=True)]
    parts.clear()
    start = [np.zeros(1, dtype=np.int64)]

    def join(at: int, offsets: list[int] | None = None) -> npt.NDArray[Any]:
        arrays, columns[at] = columns[at], []
        if offsets is not None:  # bounds: drop each chunk's leading 0, shift to the run
            arrays = start + [a[1:] + o for a, o in zip(arrays, offsets, strict=True)]
        return np.concatenate(arrays)

    return Ranking(join(0, picks), join(1), join(2), join(3, refs), join(4), matches)


class _Explanations:
    """Gives each chunk's matches their :class:`~digest.ranking.base.Match` objects. A
    Match is one (interest, weight, paper): built once per run and shared by every pick it
    explains (at 100,000 profiles, ~240,000 distinct ones for ~2.5 million uses). Beyond
    ``MATCH_CACHE`` possible matches, they are shared within a chunk only. A paper rated up
    explaining a pick is never shared: what it added depends on the profile's own score for
    the pick (lexical_kernel)."""

    def __init__(self, plan: Plan, n_matches: int) -> None:
        self._plan = plan
        self._run_wide = n_matches <= MATCH_CACHE
        # run-wide match id -> its position in ``matches`` (-1: not built yet)
        self._slot = np.full(n_matches if self._run_wide else 0, -1, dtype=np.int32)
        self.matches: list[Match] = []
        self._said: dict[tuple[int, int], tuple[str, ...]] = {}  # (interest, units) -> words

    def _made(self, arrays: ChunkPicks, fresh: IntArray) -> Iterator[Match]:
        """The Match objects of the matches at ``fresh`` (built in C by ``map``; only partial
        evidence needs Python, to name the words the paper holds)."""
        plan = self._plan
        texts = arrays.match_texts[fresh]
        # Rated papers' titles follow the interests' texts (negative ids, see ChunkPicks).
        texts = np.where(texts < 0, len(plan.texts) - 1 - texts, texts)
        names = plan.texts + plan.ratings.titles
        explained = list(map(_EXPLAIN.__getitem__, arrays.match_fields[fresh].tolist()))
        fields = list(map(_FIRST, explained))
        evidence = list(map(_SECOND, explained))
        words: list[tuple[str, ...]] = [()] * fresh.size
        partial = (arrays.match_fields[fresh] >> GRADE_SHIFT) == GRADES.index("partial")
        partial &= arrays.match_fields[fresh] & 4 == 0
        for at in np.flatnonzero(partial).tolist():
            key = (int(arrays.match_rows[fresh[at]]), int(arrays.match_masks[fresh[at]]))
            said = self._said.get(key)
            if said is None:
                units = plan.unit_words[key[0]]
                said = self._said[key] = tuple(w for k, w in enumerate(units) if key[1] >> k & 1)
            words[at] = said
        return map(
            Match,
            list(map(names.__getitem__, texts.tolist())),
            fields,
            arrays.match_amounts[fresh].tolist(),
            evidence,
            words,
        )

    def chunk(self, arrays: ChunkPicks) -> _Part:
        """The chunk's picks, compact, their matches as positions in ``matches``."""
        refs = arrays.match_ids
        liked = np.flatnonzero(refs < 0)  # papers rated up: one Match per use, after the rest
        shared = np.flatnonzero(refs >= 0) if liked.size else np.arange(refs.size)
        at = len(self.matches)
        positions = np.empty(refs.size, dtype=np.int32)
        if self._run_wide:
            slot = self._slot
            unseen = shared[slot[refs[shared]] < 0]
            ids, first = np.unique(refs[unseen], return_index=True)
            slot[ids] = np.arange(at, at + ids.size, dtype=np.int32)
            self.matches.extend(self._made(arrays, unseen[first]))
            positions[shared] = slot[refs[shared]]
        else:
            _, fresh, inverse = np.unique(refs[shared], return_index=True, return_inverse=True)
            self.matches.extend(self._made(arrays, shared[fresh]))
            positions[shared] = inverse.reshape(-1) + at
        if liked.size:
            positions[liked] = np.arange(len(self.matches), len(self.matches) + liked.size)
            self.matches.extend(self._made(arrays, liked))
        return _Part(
            arrays.row_bounds.astype(np.int64),
            arrays.cols.astype(np.int32),
            arrays.vals.astype(np.float64),  # a copy: the kernel's buffers are worst-case sized
            arrays.match_bounds.astype(np.int64),
            positions,
        )


def _run(calls: Iterator[object]) -> None:
    """Exhaust an iterator of calls (``map`` of a setter) at C speed."""
    deque(calls, maxlen=0)


def compile_kernel() -> None:
    """Compile the scoring kernel now (or load it from Numba's disk cache) by ranking a
    two-paper example. ``make install`` and the container build call it, so that no digest
    run pays the first compilation (a few seconds); later processes load it (about 0.3 s)."""
    ranker = LexicalRanker()
    docs = [RankDoc("a", "diffusion models", "", upvotes=3), RankDoc("b", "robot learning")]
    ranker.rank(
        ranker.prepare(docs),
        [Profile((Interest("diffusion"),), excludes=("robot",), required=("models",))],
        top_n=1,
        eligible=lambda start, stop: np.ones((stop - start, len(docs)), dtype=np.bool_),
    )
