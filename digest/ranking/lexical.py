"""The lexical ranker: BM25F over title and abstract, phrase-aware, all profiles at once.

How a paper is scored for a profile (details in :mod:`digest.ranking.lexical_index` and
:mod:`digest.ranking.lexical_evidence`):

- each interest's evidence in the paper is graded: its phrase (said in one place) in the
  title, in the abstract, all its distinctive words near each other ("driven" of
  "principle-driven alignment" names a relation, not a topic, and is not one of them), the
  same words apart, or only some of them (its rarest word alone, say; never its commoner
  words alone when its rarest is in no paper of the run, and only as single words when they
  are the lesser part of its rarity: "AI" of "constitutional AI"). A typed word counts only
  where it is said whole ("VLM" is "vision-language model", never just "model"); a
  hyphenated compound of plain, distinctive words is a typed word per part
  ("child-directed"). The grade scales the interest's BM25F score ``s`` (idf-weighted, title
  counted 1.5 times, phrase credit for neighbouring words, scaled down when only some of its
  words occur). An interest matches when ``s >= 1.5``: roughly one mention of a word found
  in at most a fifth of the papers; it then contributes ``weight * (1 - exp(-s / 10))``:
  between ``0.14 * weight`` and ``weight`` (a phrase in the title and said again in the
  abstract: about half its weight); an author match ``0.63 * weight``, a category
  ``0.39 * weight``;
- the interests are alternatives: the paper's score is its *strongest* interest's
  contribution, plus a bonus for the others that are themselves substantial (each at least
  ``substantial``, 0.35, about a phrase in a title) which saturates at ``bonus`` (0.15).
  One interest squarely met beats two mentioned in passing;
- the reader's ratings (:mod:`digest.ranking.lexical_feedback`) add up to ``like_weight``
  for likeness to a paper rated up and take up to ``dislike_weight`` for likeness to one
  rated down (unless one rated up is at least as alike); at most ``max(1, top // 4)``
  picks may come from likeness alone (none alike to a paper rated down), or as many as
  fill the slots of a digest with fewer than ``top`` matches that its completion with
  weaker evidence leaves empty, and never more than the number of papers rated up;
- with ``popularity_weight > 0`` the paper also gets
  ``popularity_weight * log1p(upvotes) / log1p(100)`` (100 upvotes add exactly the weight);
- the score of a paper no interest matches (nor likeness brings) is zero: it is never
  picked, except for a profile with no interests and a popularity weight, which gets the
  most upvoted papers.

A digest with at least one pick but fewer than ``top`` is then completed: after its picks
come the next papers of the same ranking run with the match floor at ``fill_floor``
(0.25 instead of 1.5), explained by the same grades ("partly matched …" for partial
evidence). A profile nothing matches keeps its empty digest (the off-topic profiles of
the relevance benchmark get nothing), and one that sets ``min_score`` keeps its own
threshold; ``fill_floor >= floor`` turns completion off. The second run covers only the
short digests, with the same eligibility.

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
        fill = blend is None and prepared.params.fill_floor < prepared.params.floor
        short: list[int] = []  # profiles to complete (see _complete)
        masks: dict[int, npt.NDArray[np.bool_]] = {}  # chunk start -> its eligibility
        kept: list[npt.NDArray[np.bool_]] = []  # the short profiles' rows of those
        remember = eligible
        if fill and eligible is not None:
            source = eligible

            def remember(start: int, stop: int) -> npt.NDArray[np.bool_]:
                mask = np.asarray(source(start, stop), dtype=np.bool_)
                masks[start] = mask
                return mask

        def note(start: int, chunk: Ranking) -> None:
            rows = [
                start + k
                for k in range(len(chunk))
                if profiles[start + k].min_score is None
                and 0 < _n_matched(chunk, k, profiles[start + k]) < tops[start + k]
            ]
            short.extend(rows)
            mask = masks.pop(start, None)  # dropped as soon as its chunk is done
            if mask is not None and rows:
                kept.append(mask[np.asarray(rows) - start])

        with _gc_paused():
            ranking = self._run(
                prepared, profiles, tops, remember, chunk_size, blend, note if fill else None
            )
            if short:
                ranking = self._complete(prepared, profiles, tops, ranking, short, kept, chunk_size)
            return ranking

    def _run(
        self,
        prepared: LexicalIndex,
        profiles: Sequence[Profile],
        tops: IntArray,
        eligible: EligibleFn | None,
        chunk_size: int,
        blend: Callable[[Plan], Plan] | None,
        on_chunk: Callable[[int, Ranking], None] | None,
        *,
        floor: float | None = None,
    ) -> Ranking:
        """One pass: compile the plan, score every chunk, keep its picks as arrays (each
        chunk's handed to ``on_chunk`` with its first profile's position)."""
        plan = build_plan(prepared, profiles, floor=floor)
        if blend is not None:
            plan = blend(plan)
        release_free_memory()  # the plan's temporaries
        context = RunContext.build(prepared, plan, tops, eligible)
        bounds = _bounds(len(profiles), chunk_size)
        explanations = _Explanations(plan, context.n_matches)
        parts = []
        for (start, _), arrays in zip(bounds, self._chunks(context, bounds), strict=True):
            part = explanations.chunk(arrays)
            if on_chunk is not None:
                on_chunk(start, Ranking(*part, explanations.matches))
            parts.append(part)
        matches = explanations.matches
        # The plan (100 MB or more at 100,000 profiles) is freed before the parts are
        # joined, so that it and two copies of the picks never coexist.
        del explanations, context, plan
        release_free_memory()
        return _joined(parts, matches)

    def _complete(
        self,
        prepared: LexicalIndex,
        profiles: Sequence[Profile],
        tops: IntArray,
        ranking: Ranking,
        short: list[int],
        kept: list[npt.NDArray[np.bool_]],
        chunk_size: int,
    ) -> Ranking:
        """``ranking`` with its short digests completed: a profile with at least one match
        but fewer than its ``top`` gets, after its matches, the next papers whose evidence
        reaches ``fill_floor`` (the same grades, explained the same way: "partly …" when
        partial), ranked as a pass with that floor ranks them. A profile nothing matches
        keeps its empty digest (a week without its subject says so), and one that set
        ``min_score`` keeps its own threshold. A completing pick keeps its own score
        (it may exceed a match's: the list's order is the digest's order).

        The reader's ratings count in this pass as in the first (the same plan and
        kernel: likeness to a paper rated up adds, to one rated down takes away, the
        exclusions and required phrases still apply). Whether a digest is short counts
        its matches only, not the papers its ratings alone brought. Those are held to the
        cap of a full digest, ``max(1, top // 4)`` (the first pass's best, where it
        ranked them); the sixth round's rule that they may fill every empty slot of a
        short digest now applies to the slots the weaker evidence leaves empty: a paper
        no interest says anything about does not push out one an interest partly
        matches. Only the short profiles' picks become objects; the rest stay arrays."""
        completed: dict[int, list[Pick]] = {}
        caps: dict[int, int] = {}  # papers likeness alone may still bring, per profile
        for i in short:
            cap = max(1, int(tops[i]) // 4)  # as in a full digest (lexical_kernel)
            found = ranking.picks(i)
            completed[i] = [p for p in found if not _owed_to_ratings(p) or (cap := cap - 1) >= 0]
            caps[i] = max(cap, 0)
        subset = [profiles[i] for i in short]
        more = tops[short] + np.fromiter((len(completed[i]) for i in short), np.int64, len(short))
        stacked = np.concatenate(kept) if kept else None

        def rows(start: int, stop: int) -> npt.NDArray[np.bool_]:
            assert stacked is not None  # only passed when the first pass had a mask
            return stacked[start:stop]

        extra = self._run(
            prepared,
            subset,
            more,
            rows if stacked is not None else None,
            chunk_size,
            None,
            None,
            floor=prepared.params.fill_floor,
        )
        for k, i in enumerate(short):
            found = completed[i]
            have = {p.index for p in found}
            room = int(tops[i]) - len(found)
            cap = caps[i]
            later: list[Pick] = []  # brought by likeness alone beyond the cap
            for pick in extra.picks(k):
                if room == 0:
                    break
                if pick.index in have:
                    continue
                if _owed_to_ratings(pick):
                    if cap == 0:
                        later.append(pick)
                        continue
                    cap -= 1
                found.append(pick)
                room -= 1
            found.extend(later[:room])  # the slots nothing else fills
        return ranking.replacing(completed)

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


def _bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + chunk_size, n)) for start in range(0, n, chunk_size)]


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


def _owed_to_ratings(pick: Pick) -> bool:
    """A pick only the likeness to papers rated up brought (no interest matches it)."""
    return bool(pick.matches) and all(m.evidence == "liked" for m in pick.matches)


def _n_matched(ranking: Ranking, row: int, profile: Profile) -> int:
    """How many of a profile's picks an interest (or the upvote prior) brought."""
    if not profile.rated:  # nothing else can bring one
        return ranking.count(row)
    return sum(1 for p in ranking.picks(row) if not _owed_to_ratings(p))
