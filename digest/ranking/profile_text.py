"""Profile text: the small language subscribers write their interests in.

One interest per string::

    diffusion models                 a keyword phrase, weight 1
    graph neural networks^2          weight 2 (any number in (0, 10])
    "RL: exploration"^0.5            quotes keep ``:`` and ``^`` literal; weight 0.5
    author:Yann LeCun                an author (accents and case ignored; "Y. LeCun",
                                     "LeCun, Yann" are the same person; "LeCun" alone
                                     matches every LeCun)
    cat:cs.LG^1.5                    an arXiv category, exact match

Exclusions and required phrases use the same syntax without a weight (``robotics``,
``author:Someone``, ``cat:cs.CV``). Phrases are analysed like paper text (see
:mod:`digest.ranking.analyzer`), so ``pre-training`` also finds "pretrained" and ``RL``
finds "reinforcement learning". Anything else is refused with a one-line
:class:`~digest.errors.ProfileError` that quotes the offending text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

from digest.errors import ProfileError
from digest.ranking.analyzer import Analyzer
from digest.ranking.base import Interest, InterestKind, Profile

MAX_WEIGHT = 10.0
_PREFIXES: dict[str, InterestKind] = {"author": "author", "cat": "category"}
_PREFIX = re.compile(r"^(author|cat)\s*:\s*", re.IGNORECASE)
_WEIGHT = re.compile(r"\^\s*([^\s\^\"]*)\s*$")
_CATEGORY = re.compile(r"^[a-z][a-z-]*(\.[a-z][a-z-]*)?$", re.IGNORECASE)


@lru_cache(maxsize=1)
def default_analyzer() -> Analyzer:
    """The analyzer profiles are checked with (built once; it only caches stems)."""
    return Analyzer()


def split_prefix(text: str) -> tuple[InterestKind, str]:
    """``"author:Ada Lovelace"`` → ``("author", "Ada Lovelace")``; no prefix → keyword.

    Quotes around the body are removed; quoted text is never read as a prefix.
    """
    body = text.strip()
    kind: InterestKind = "keyword"
    match = _PREFIX.match(body)
    if match:
        kind = _PREFIXES[match.group(1).lower()]
        body = body[match.end() :]
    if len(body) >= 2 and body[0] == body[-1] == '"':
        body = body[1:-1].strip()
    return kind, body


def parse_interest(text: str, *, analyzer: Analyzer | None = None) -> Interest:
    """Parse one interest, e.g. ``"graph neural networks^2"`` or ``"cat:cs.LG"``.

    Raises :class:`ProfileError` for an empty phrase, a bad weight, unbalanced quotes or a
    phrase with nothing searchable in it (only stop words).
    """
    raw = text.strip()
    weight = 1.0
    match = _WEIGHT.search(raw)
    if match and raw.count('"', 0, match.start()) % 2 == 0:
        weight = _weight(match.group(1), raw)
        raw = raw[: match.start()].strip()
    interest = _checked(raw, original=text, analyzer=analyzer)
    return Interest(text=interest[1], weight=weight, kind=interest[0])


def parse_phrase(text: str, *, analyzer: Analyzer | None = None) -> str:
    """Check an exclusion or required phrase (no weight) and return it normalised."""
    match = _WEIGHT.search(text)
    if match and text.count('"', 0, match.start()) % 2 == 0:
        raise ProfileError(f"exclusions and required phrases take no weight: {text!r}")
    kind, body = _checked(text.strip(), original=text, analyzer=analyzer)
    return body if kind == "keyword" else f"{'author' if kind == 'author' else 'cat'}:{body}"


def build_profile(
    keywords: Sequence[str],
    excludes: Sequence[str] = (),
    *,
    required: Sequence[str] = (),
    authors: Sequence[str] = (),
    categories: Sequence[str] = (),
    min_score: float | None = None,
    popularity_weight: float = 0.0,
) -> Profile:
    """Parse a whole profile. ``authors`` and ``categories`` are the same as ``author:…``
    and ``cat:…`` keywords (and may carry a weight)."""
    if isinstance(keywords, str) or isinstance(excludes, str) or isinstance(required, str):
        raise ProfileError("keywords, excludes and required must be lists of phrases")
    analyzer = default_analyzer()
    interests = [parse_interest(k, analyzer=analyzer) for k in keywords]
    interests += [parse_interest(_prefixed("author", a), analyzer=analyzer) for a in authors]
    interests += [parse_interest(_prefixed("cat", c), analyzer=analyzer) for c in categories]
    if not interests:
        raise ProfileError("nothing to match: give at least one keyword, author or category")
    if min_score is not None and not (math.isfinite(min_score) and min_score >= 0):
        raise ProfileError(f"min_score must be a number >= 0, got {min_score!r}")
    if not (math.isfinite(popularity_weight) and 0 <= popularity_weight <= MAX_WEIGHT):
        raise ProfileError(
            f"popularity_weight must be between 0 and {MAX_WEIGHT:g}, got {popularity_weight!r}"
        )
    return Profile(
        interests=tuple(interests),
        excludes=tuple(parse_phrase(e, analyzer=analyzer) for e in excludes),
        required=tuple(parse_phrase(r, analyzer=analyzer) for r in required),
        min_score=None if min_score is None else float(min_score),
        popularity_weight=float(popularity_weight),
    )


def _prefixed(prefix: str, text: str) -> str:
    return text if _PREFIX.match(text.strip()) else f"{prefix}:{text}"


def _weight(token: str, original: str) -> float:
    try:
        weight = float(token)
    except ValueError:
        raise ProfileError(f"weight is not a number: {original.strip()!r}") from None
    if not (math.isfinite(weight) and 0 < weight <= MAX_WEIGHT):
        raise ProfileError(f"weight must be > 0 and <= {MAX_WEIGHT:g}: {original.strip()!r}")
    return weight


def _checked(raw: str, *, original: str, analyzer: Analyzer | None) -> tuple[InterestKind, str]:
    if raw.count('"') % 2:
        raise ProfileError(f"unbalanced quotes: {original.strip()!r}")
    if "^" in raw and '"' not in raw:
        raise ProfileError(f"a weight goes at the end, as in 'topic^2': {original.strip()!r}")
    kind, body = split_prefix(raw)
    if '"' in body:
        raise ProfileError(f"quotes must surround the whole phrase: {original.strip()!r}")
    if not body:
        raise ProfileError(f"empty {'keyword' if kind == 'keyword' else kind}: {original!r}")
    if kind == "category" and not _CATEGORY.match(body):
        raise ProfileError(f"not a category (expected e.g. cs.LG): {original.strip()!r}")
    analyzer = analyzer or default_analyzer()
    searchable = (
        analyzer.author_keys(body, query=True)
        if kind == "author"
        else (body,)
        if kind == "category"
        else analyzer.terms(body, query=True)
    )
    if not searchable:
        raise ProfileError(f"nothing to match in {original.strip()!r} (only stop words?)")
    return kind, body
