"""Ranking: score new papers against subscriber profiles.

``get_ranker("lexical")`` is the default ranker (BM25F, see :mod:`digest.ranking.lexical`);
:mod:`digest.ranking.profile_text` parses the interests subscribers write.
"""

from __future__ import annotations

from digest.errors import ConfigError
from digest.ranking.analyzer import Analyzer
from digest.ranking.base import (
    EligibleFn,
    Interest,
    Match,
    Pick,
    Prepared,
    Profile,
    RankDoc,
    Ranker,
    Rated,
    UsesStore,
)
from digest.ranking.lexical import LexicalRanker
from digest.ranking.lexical_index import LexicalIndex, LexicalParams
from digest.ranking.profile_text import build_profile, parse_interest

__all__ = [
    "Analyzer",
    "EligibleFn",
    "Interest",
    "LexicalIndex",
    "LexicalParams",
    "LexicalRanker",
    "Match",
    "Pick",
    "Prepared",
    "Profile",
    "RankDoc",
    "Ranker",
    "Rated",
    "UsesStore",
    "build_profile",
    "get_ranker",
    "parse_interest",
]

RANKERS = ("lexical", "semantic")


def get_ranker(name: str = "lexical") -> Ranker:
    """The ranker called ``name``; raises :class:`ConfigError` for an unknown name, or for
    ``semantic`` when the optional extra is not installed (torch is not imported here)."""
    if name == "lexical":
        return LexicalRanker()
    if name == "semantic":
        from digest.ranking.semantic import SemanticRanker  # noqa: PLC0415  # optional extra

        return SemanticRanker()
    raise ConfigError(f"unknown ranker {name!r} (known: {', '.join(RANKERS)})")
