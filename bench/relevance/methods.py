"""The rankers the relevance benchmark compares, each as ``profile -> ranked paper indices``.

- ``lexical``: what users get: :func:`digest.ranking.build_profile` + :class:`LexicalRanker`,
  default threshold included (a profile may get fewer than ``k`` papers, or none);
- ``semantic``: :mod:`digest.ranking.semantic` when it is importable and its model installed;
- ``substring``: naive baseline, the case-insensitive number of occurrences of each keyword
  string (weight suffix removed) in title + abstract, summed;
- ``bm25s``: the ``bm25s`` library (BM25, PyStemmer English stemmer, English stop words) over
  title + abstract; the query is the keywords joined by spaces.

Baselines know nothing of weights (``^N``) and return every paper with a positive score.
Exclusions are applied identically to every method: a paper is dropped when it matches one
of the profile's exclusions as the product matches them (the lexical index's phrase match),
so the comparison is about ranking, not about exclusion syntax. Ties go to the lower paper
index, so every run gives the same table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import bm25s
import numpy as np
import Stemmer

from digest.ranking import LexicalIndex, LexicalRanker, Profile, RankDoc, build_profile
from digest.ranking.lexical_plan import build_plan


@dataclass(frozen=True)
class BenchProfile:
    """One labelled profile: what the subscriber typed, what they meant, the judgments."""

    id: str
    split: str  # "tune" or "heldout"
    intent: str
    keywords: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    offtopic: bool = False
    grades: dict[int, int] = field(default_factory=dict)  # paper index -> 1 or 2

    def profile(self, *, weights: bool = True) -> Profile:
        keywords = self.keywords if weights else tuple(strip_weight(k) for k in self.keywords)
        return build_profile(list(keywords), list(self.exclude))


Method = Callable[[BenchProfile], list[int]]


def strip_weight(keyword: str) -> str:
    """``"offline RL^2"`` -> ``"offline RL"``."""
    return re.sub(r"\^\s*[0-9.]+\s*$", "", keyword).strip()


def excluded(index: LexicalIndex, profile: Profile) -> set[int]:
    """Papers that one of the profile's exclusions matches (the product's phrase match)."""
    if not profile.excludes:
        return set()
    plan = build_plan(index, [profile])
    return {int(d) for d in (plan.excl @ plan.excl_match).indices}


def _ranked(scores: np.ndarray, drop: set[int], k: int) -> list[int]:
    order = np.lexsort((np.arange(scores.size), -scores))
    return [int(i) for i in order if scores[i] > 0 and int(i) not in drop][:k]


def make_methods(docs: Sequence[RankDoc], k: int) -> dict[str, Method]:
    """Every available method, ready to rank ``docs``; ``k`` results at most."""
    lexical = LexicalRanker()
    index = lexical.prepare(docs)
    texts = [f"{d.title}\n{d.abstract}".lower() for d in docs]
    stemmer = Stemmer.Stemmer("english")
    okapi = bm25s.BM25()
    okapi.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )

    def ours(bp: BenchProfile, *, weights: bool = True) -> list[int]:
        [picks] = lexical.rank(index, [bp.profile(weights=weights)], top_n=k)
        return [p.index for p in picks]

    def substring(bp: BenchProfile) -> list[int]:
        phrases = [strip_weight(kw).lower() for kw in bp.keywords]
        scores = np.array([sum(t.count(p) for p in phrases) for t in texts], dtype=float)
        return _ranked(scores, excluded(index, bp.profile()), k)

    def bm25(bp: BenchProfile) -> list[int]:
        query = " ".join(strip_weight(kw) for kw in bp.keywords)
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
        scores = np.asarray(okapi.get_scores(_query_words(tokens)), dtype=float)
        return _ranked(scores, excluded(index, bp.profile()), k)

    methods: dict[str, Method] = {
        "lexical": ours,
        "lexical, no weights": lambda bp: ours(bp, weights=False),
        "substring": substring,
        "bm25s": bm25,
    }
    semantic = _semantic(docs, k)
    if semantic is not None:
        methods["semantic"] = lambda bp: [
            i for i in semantic(bp) if i not in excluded(index, bp.profile())
        ][:k]
    return methods


def _query_words(tokens: bm25s.tokenization.Tokenized) -> list[str]:
    inverse = {i: w for w, i in tokens.vocab.items()}
    return [inverse[i] for i in tokens.ids[0]]


SEMANTIC_NOTE: list[str] = []


def _semantic(docs: Sequence[RankDoc], k: int) -> Callable[[BenchProfile], list[int]] | None:
    """The semantic ranker when installed, else None (and a note saying why)."""
    try:
        from digest.ranking import get_ranker  # noqa: PLC0415 - optional ranker

        ranker = get_ranker("semantic")
        prepared = ranker.prepare(docs)
    except Exception as exc:  # any reason it is unavailable is reported, not fatal
        SEMANTIC_NOTE.append(f"semantic ranker skipped: {type(exc).__name__}: {exc}")
        return None

    def rank(bp: BenchProfile) -> list[int]:
        [picks] = ranker.rank(prepared, [bp.profile()], top_n=k + 20)
        return [p.index for p in picks]

    return rank
