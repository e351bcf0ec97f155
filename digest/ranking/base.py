"""Ranking plug-point: the data a ranker takes and gives, and the ``Ranker`` protocol.

A ranker scores many profiles against one set of papers at once. The paper side is built
once per run (:meth:`Ranker.prepare`); profiles are scored in chunks so memory stays bounded.
Every pick carries the matches that explain it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

InterestKind = Literal["keyword", "author", "category"]
Field = Literal["title", "abstract", "authors", "categories"]


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
class Profile:
    """What a subscriber wants. A paper matching any exclusion is never picked."""

    interests: tuple[Interest, ...]
    excludes: tuple[str, ...] = ()
    required: tuple[str, ...] = ()  # every required phrase must match (empty: no requirement)
    min_score: float | None = None  # None: the ranker's default threshold
    popularity_weight: float = 0.0  # 0 disables the upvote prior


@dataclass(frozen=True, slots=True)
class Match:
    """One interest that contributed to a pick, where it matched and how much."""

    interest: str
    fields: tuple[Field, ...]
    contribution: float


@dataclass(frozen=True, slots=True)
class Pick:
    """A paper picked for a profile: index into the prepared docs, score, explanation."""

    index: int
    score: float
    matches: tuple[Match, ...]

    def reason(self) -> str:
        """A short human explanation, e.g. ``matched "diffusion" (title, abstract)``."""
        parts = [f"\u201c{m.interest}\u201d ({', '.join(m.fields)})" for m in self.matches]
        return "matched " + "; ".join(parts) if parts else "popular"


# For profiles [start, stop): boolean array of shape (stop - start, n_docs), True where the
# paper may be picked for that profile (not yet delivered, inside its window).
EligibleFn = Callable[[int, int], npt.NDArray[np.bool_]]


class Prepared(Protocol):
    """A ranker's paper-side index, built once per run."""

    @property
    def docs(self) -> Sequence[RankDoc]: ...


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
