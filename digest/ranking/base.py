"""Ranking plug-point: the data a ranker takes and gives, and the ``Ranker`` protocol.

A ranker scores many profiles against one set of papers at once. The paper side is built
once per run (:meth:`Ranker.prepare`); profiles are scored in chunks so memory stays bounded.
Every pick carries the matches that explain it. A whole run's picks can also be had as
arrays (:class:`Ranking`, from a ranker that :class:`RanksInArrays`): two million picks
as objects held ~240 MB through a whole run, as arrays ~50 MB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sqlmodel import Session

InterestKind = Literal["keyword", "author", "category"]
Field = Literal["title", "abstract", "authors", "categories", "meaning"]
# How an interest was found (digest.ranking.lexical_evidence): the phrase; all its
# distinctive words near each other; all of them, apart; only some of them; (semantic
# ranker) similar in meaning only; a paper like one the reader rated up.
Evidence = Literal["phrase", "near", "apart", "partial", "meaning", "liked"]


@dataclass(frozen=True, slots=True)
class RankDoc:
    """The text of one paper, as rankers see it."""

    key: str
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    upvotes: int | None = None


@dataclass(frozen=True, slots=True)
class Interest:
    """One interest of a profile: a keyword phrase (or author, or category) and its weight."""

    text: str
    weight: float = 1.0
    kind: InterestKind = "keyword"


@dataclass(frozen=True, slots=True)
class Rated:
    """A paper the reader rated: ``vote`` +1 (more like this) or -1 (less like this)."""

    paper: RankDoc
    vote: int


@dataclass(frozen=True, slots=True)
class Profile:
    """What a subscriber wants. A paper matching any exclusion is never picked."""

    interests: tuple[Interest, ...]
    excludes: tuple[str, ...] = ()
    required: tuple[str, ...] = ()  # every required phrase must match (empty: no requirement)
    min_score: float | None = None  # None: the ranker's default threshold
    popularity_weight: float = 0.0  # 0 disables the upvote prior
    rated: tuple[Rated, ...] = ()  # the reader's feedback, learned from (lexical_feedback)


# Match and Pick are not frozen: a run builds about a million of them, and a frozen
# dataclass's __init__ (object.__setattr__ per field) costs three times as much. Treat them
# as read-only values; they compare by value.
@dataclass(slots=True)
class Match:
    """One interest that contributed to a pick, where it matched, how, and how much.

    ``words``: for partial evidence, the interest's words the paper holds (as typed)."""

    interest: str
    fields: tuple[Field, ...]
    contribution: float
    evidence: Evidence = "phrase"
    words: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return self.evidence in ("apart", "partial")

    def describe(self) -> str:
        """This match as a clause of :meth:`Pick.reason`."""
        quoted = f"\u201c{self.interest}\u201d"
        where = ", ".join(self.fields)
        if self.evidence == "liked":
            return f"like {quoted} that you rated up"
        if self.evidence == "near":
            return f"{quoted} (words near each other, {where})"
        if self.evidence == "apart":
            return f"partly {quoted} (its words apart, {where})"
        if self.evidence == "partial":
            said = " ".join(self.words)
            return f"partly {quoted} (only \u201c{said}\u201d, {where})"
        return f"{quoted} ({where})"


@dataclass(slots=True)
class Pick:
    """A paper picked for a profile: index into the prepared docs, score, explanation."""

    index: int
    score: float
    matches: tuple[Match, ...]

    def reason(self) -> str:
        """A short human explanation, e.g. ``matched “diffusion” (title, abstract)``. Partial
        evidence says so (``partly “graph neural networks” (only “neural networks”,
        title)``); interests only the semantic ranker found read ``similar to “protein
        design”``; a pick owed to feedback ``like “Barlow Twins…” that you rated up``."""
        if not self.matches:
            return "popular"
        found = [m for m in self.matches if m.evidence not in ("meaning", "liked")]
        similar = ", ".join(
            f"\u201c{m.interest}\u201d" for m in self.matches if m.evidence == "meaning"
        )
        liked = next((m.describe() for m in self.matches if m.evidence == "liked"), "")
        parts = [m.describe() for m in found]
        text = ""
        if parts:
            lead = "partly matched " if found[0].partial else "matched "
            text = lead + "; ".join(parts)[len("partly ") if found[0].partial else 0 :]
        if similar:
            text += ("; similar to " if text else "similar to ") + similar
        if liked:
            text += f"; {liked}" if text else liked
        return text


IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class Ranking:
    """Every profile's picks, best first, as arrays (no object per pick).

    The picks of profile ``r`` are ``[bounds[r], bounds[r + 1])``; pick ``i`` is paper
    ``docs[i]`` (an index into the prepared docs) with score ``scores[i]``, explained by the
    matches ``matches[match_ids[j]]`` for ``j`` in ``[match_bounds[i], match_bounds[i + 1])``.
    :meth:`picks` makes one profile's :class:`Pick` objects on demand."""

    bounds: IntArray
    docs: npt.NDArray[np.int32]
    scores: npt.NDArray[np.float64]
    match_bounds: IntArray
    match_ids: npt.NDArray[np.int32]
    matches: Sequence[Match]

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def count(self, row: int) -> int:
        """How many picks profile ``row`` has."""
        return int(self.bounds[row + 1] - self.bounds[row])

    def picks(self, row: int) -> list[Pick]:
        """Profile ``row``'s picks, best first."""
        start, stop = self.bounds[row : row + 2].tolist()
        edges = self.match_bounds[start : stop + 1].tolist()
        first = edges[0]
        found = list(map(self.matches.__getitem__, self.match_ids[first : edges[-1]].tolist()))
        return [
            Pick(doc, score, tuple(found[a - first : b - first]))
            for doc, score, a, b in zip(
                self.docs[start:stop].tolist(),
                self.scores[start:stop].tolist(),
                edges[:-1],
                edges[1:],
                strict=True,
            )
        ]

    def lists(self) -> list[list[Pick]]:
        """Every profile's picks (what :meth:`Ranker.rank` returns)."""
        return [self.picks(row) for row in range(len(self))]

    def replacing(self, rows: Mapping[int, Sequence[Pick]]) -> Ranking:
        """These picks with the picks of ``rows`` (profile -> its new picks) instead; every
        other profile's arrays are copied as they are, the new picks' matches are added
        after ``matches``."""
        if not rows:
            return self
        order = sorted(rows)
        new = Ranking.of([rows[row] for row in order])
        shift = len(self.matches)
        counts = np.diff(self.bounds)
        counts[order] = np.diff(new.bounds)
        spans: list[tuple[Ranking, int, int, int]] = []  # (source, first pick, stop, shift)
        done = 0  # picks of these arrays copied so far
        for k, row in enumerate(order):
            spans.append((self, done, int(self.bounds[row]), 0))
            spans.append((new, int(new.bounds[k]), int(new.bounds[k + 1]), shift))
            done = int(self.bounds[row + 1])
        spans.append((self, done, int(self.docs.size), 0))
        zero = np.zeros(1, dtype=np.int64)
        return Ranking(
            np.concatenate([zero, np.cumsum(counts, dtype=np.int64)]),
            np.concatenate([src.docs[a:b] for src, a, b, _ in spans]),
            np.concatenate([src.scores[a:b] for src, a, b, _ in spans]),
            np.concatenate(
                [zero] + [np.diff(src.match_bounds[a : b + 1]) for src, a, b, _ in spans]
            ).cumsum(),
            np.concatenate(
                [
                    src.match_ids[src.match_bounds[a] : src.match_bounds[b]] + add
                    for src, a, b, add in spans
                ]
            ).astype(np.int32, copy=False),
            [*self.matches, *new.matches],
        )

    @classmethod
    def empty(cls, rows: int) -> Ranking:
        """``rows`` profiles without a pick."""
        return cls(
            np.zeros(rows + 1, dtype=np.int64),
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.float64),
            np.zeros(1, dtype=np.int64),
            np.zeros(0, dtype=np.int32),
            (),
        )

    @classmethod
    def of(cls, rows: Sequence[Sequence[Pick]]) -> Ranking:
        """The arrays of picks given as objects (a ranker without :class:`RanksInArrays`)."""
        picks = [pick for row in rows for pick in row]
        table: dict[int, int] = {}  # id of a Match -> its position in ``matches``
        matches: list[Match] = []
        ids: list[int] = []
        for pick in picks:
            for match in pick.matches:
                at = table.get(id(match))
                if at is None:
                    at = table[id(match)] = len(matches)
                    matches.append(match)
                ids.append(at)
        counts = [len(pick.matches) for pick in picks]
        return cls(
            np.cumsum([0, *map(len, rows)], dtype=np.int64),
            np.array([pick.index for pick in picks], dtype=np.int32),
            np.array([pick.score for pick in picks], dtype=np.float64),
            np.cumsum([0, *counts], dtype=np.int64),
            np.array(ids, dtype=np.int32),
            matches,
        )


# For profiles [start, stop): boolean array of shape (stop - start, n_docs), True where the
# paper may be picked for that profile (not yet delivered, inside its window).
EligibleFn = Callable[[int, int], npt.NDArray[np.bool_]]


class Prepared(Protocol):
    """A ranker's paper-side index, built once per run."""

    @property
    def docs(self) -> Sequence[RankDoc]: ...


@runtime_checkable
class UsesStore(Protocol):
    """A ranker that keeps state in the store (the semantic ranker's paper embeddings).

    The pipeline hands it the run's session; the ranker writes through it, never commits.
    """

    def with_session(self, session: Session) -> Ranker:
        """This ranker, reading and writing its cache through ``session``."""
        ...


class Ranker(Protocol):
    """Scores profiles against prepared papers, returns the top picks per profile."""

    name: str

    def prepare(self, docs: Sequence[RankDoc]) -> Prepared:
        """Build the paper side once (analysis, term statistics)."""
        ...

    def rank(
        self,
        prepared: Prepared,
        profiles: Sequence[Profile],
        *,
        top_n: int | Sequence[int],
        eligible: EligibleFn | None = None,
        chunk_size: int = 2048,
    ) -> list[list[Pick]]:
        """Top picks per profile, best first, each above the profile's threshold."""
        ...


@runtime_checkable
class RanksInArrays(Protocol):
    """A ranker that can give a whole run's picks as arrays (:class:`Ranking`)."""

    def ranking(
        self,
        prepared: Prepared,
        profiles: Sequence[Profile],
        *,
        top_n: int | Sequence[int],
        eligible: EligibleFn | None = None,
        chunk_size: int = 2048,
    ) -> Ranking:
        """What :meth:`Ranker.rank` returns, as arrays."""
        ...
