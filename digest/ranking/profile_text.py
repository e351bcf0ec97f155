"""Profile text: the small language subscribers write their interests in.

The same text is used on the command line, in profile files and (later) in the web form.
A profile is made of lists of strings:

- interests: ``-k``/``--keyword`` on the CLI, ``keywords = [...]`` in a profile file; they
  score papers (``--author``/``authors`` and ``--category``/``categories`` add ``author:``
  and ``cat:`` interests);
- exclusions: ``-x``/``--exclude``, ``exclude = [...]``: a paper matching one is dropped;
- required phrases: ``--require``, ``require = [...]``: a pick must match every one.

Among the keywords, ``-phrase`` is an exclusion and ``+phrase`` a required phrase (handy in a
single text box: ``diffusion models, -survey, +video``).

One interest per string::

    diffusion models                 a keyword phrase, weight 1
    graph neural networks^2          weight 2 (any number in (0, 10])
    "RL: exploration"^0.5            quotes keep ``:`` and ``^`` literal; weight 0.5
    author:Yann LeCun                an author (accents and case ignored; "Y. LeCun",
                                     "LeCun, Yann" are the same person; "LeCun" alone
                                     matches every LeCun); only sources that list authors
    cat:cs.LG^1.5                    an arXiv category, exact match; only sources that
                                     give categories (arXiv feeds and API)

A keyword phrase is matched as a phrase, with graded evidence: its words next to each other
(in any order, or one word apart) in the title count most, then in the abstract, then all
its distinctive words near each other, then its words apart or only some of them ("neural
networks" alone is a weak, partial match for "graph neural networks"; "skill" in a title is
one for "skill learning"). A word typed as one ("VLM", "low-resource") counts only where
all of it is said. The interests are alternatives: a paper squarely about one of them
beats one mentioning two in passing (:mod:`digest.ranking.lexical`). Phrases are analysed like
paper text (see :mod:`digest.ranking.analyzer`): case, accents, hyphens and word forms do
not matter (``pre-training`` = "pretrained" = "pre trained"), and the field's common
acronyms match their expansion both ways (``RL`` = "reinforcement learning", ``LoRA`` =
"low-rank adaptation").

Exclusions and required phrases use the same syntax without a weight (``robotics``,
``author:Someone``, ``cat:cs.CV``); they must match as a phrase (all words, neighbours
next to each other or one word apart). For example, on the command line::

    digest subscribers add ada@example.org -k "offline RL^2" -x robotics --require "reward model"

and the same profile, with an author and a category added, in a profile file::

    keywords = ["offline RL^2", "author:Sergey Levine", "cat:cs.LG"]
    exclude = ["robotics"]
    require = ["reward model"]

A paper is picked when at least one interest matches it (see :mod:`digest.ranking.lexical`
for the score scale; ``min_score`` raises the bar); a week where nothing matches gives an
empty digest, not the least bad papers. Anything else is refused with a one-line
:class:`~digest.errors.ProfileError` that quotes the offending text, e.g.
``weight is not a number: 'diffusion^high'`` or ``unbalanced quotes: '"RL'``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

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


@lru_cache(maxsize=65_536)
def _parsed_interest(text: str) -> Interest:
    """:func:`parse_interest` with the default analyzer, remembered: a weekly run builds
    100,000 profiles out of far fewer distinct phrases (a refused phrase raises each time)."""
    return parse_interest(text, analyzer=default_analyzer())


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
    and ``cat:…`` keywords (and may carry a weight); a keyword written ``-phrase`` is an
    exclusion and ``+phrase`` a required phrase, so one box of text can say everything."""
    if isinstance(keywords, str) or isinstance(excludes, str) or isinstance(required, str):
        raise ProfileError("keywords, excludes and required must be lists of phrases")
    parts = ProfileParts()
    lists = (
        ("keyword", keywords),
        ("author", authors),
        ("category", categories),
        ("exclude", excludes),
        ("require", required),
    )
    for kind, texts in lists:
        for text in texts:
            parts.add(kind, parse_entry(kind, text))
    return parts.profile(min_score=min_score, popularity_weight=popularity_weight)


# One entry of a profile, parsed: an interest, or an exclusion or required phrase (normalised).
Entry = tuple[Literal["interest", "exclude", "require"], Interest | str]


def parse_entry(kind: str, text: str) -> Entry:
    """One entry of a profile list (``kind``: keyword, author, category, exclude, require)
    as :func:`build_profile` reads it; a function of its arguments only, so a caller building
    many profiles may remember it per distinct entry."""
    if kind == "keyword":
        sign, body = text.strip()[:1], text.strip()[1:]
        if sign in "-+" and sign and body.strip():
            kind, text = ("exclude" if sign == "-" else "require"), body
        else:
            return "interest", _parsed_interest(text)
    if kind in ("author", "category"):
        prefix = "author" if kind == "author" else "cat"
        return "interest", _parsed_interest(_prefixed(prefix, text))
    if kind == "exclude":
        return "exclude", parse_phrase(_unsigned(text), analyzer=default_analyzer())
    if kind == "require":
        return "require", parse_phrase(text, analyzer=default_analyzer())
    raise ProfileError(f"unknown kind of profile entry {kind!r}")


# Where a parsed entry goes, in the profile's order: interests from keywords, authors,
# categories (places 0-2); exclusions and required phrases as listed (3, 4), then those
# written as -x and +x keywords (5, 6).
_PLACE = {("keyword", "interest"): 0, ("author", "interest"): 1, ("category", "interest"): 2}
_PLACE |= {("exclude", "exclude"): 3, ("require", "require"): 4}
_PLACE |= {("keyword", "exclude"): 5, ("keyword", "require"): 6}


class ProfileParts:
    """A profile's parsed entries (:func:`parse_entry`), each put where :func:`build_profile`
    puts it, whatever order they come in within their kind's list."""

    def __init__(self) -> None:
        self._places: tuple[list[Interest | str], ...] = tuple([] for _ in range(7))

    @staticmethod
    def place(kind: str, entry: Entry) -> int:
        """Where an entry of list ``kind`` goes (to remember with the entry)."""
        return _PLACE[kind, entry[0]]

    def add(self, kind: str, entry: Entry) -> None:
        self.add_at(self.place(kind, entry), entry[1])

    def add_at(self, place: int, value: Interest | str) -> None:
        self._places[place].append(value)

    def profile(self, *, min_score: float | None, popularity_weight: float) -> Profile:
        """The profile of the entries added, checked as a whole."""
        places = self._places
        return _assemble(
            [v for v in places[0] + places[1] + places[2] if isinstance(v, Interest)],
            [v for v in places[3] + places[5] if isinstance(v, str)],
            [v for v in places[4] + places[6] if isinstance(v, str)],
            min_score=min_score,
            popularity_weight=popularity_weight,
        )


def _assemble(
    interests: Sequence[Interest],
    excludes: Sequence[str],
    required: Sequence[str],
    *,
    min_score: float | None,
    popularity_weight: float,
) -> Profile:
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
        excludes=tuple(excludes),
        required=tuple(required),
        min_score=None if min_score is None else float(min_score),
        popularity_weight=float(popularity_weight),
    )


def _unsigned(text: str) -> str:
    """``-x -robotics`` means the same as ``-x robotics``."""
    stripped = text.strip()
    return stripped[1:] if stripped.startswith("-") and stripped[1:].strip() else text


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
