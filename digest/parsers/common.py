"""Shared pieces of the listing parsers: the result type, error messages, text and value cleaning.

Every parser turns untrusted bytes into :class:`~digest.records.PaperRecord` values, so the
helpers here are the one place that decides what "clean" means: a title is always one line of
plain text, markup is never passed through, URLs are http(s) only, and every error message is a
single line that starts with the listing's name.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser

from digest.errors import ListingError, ListingParseError
from digest.store.identity import collapse_ws
from digest.store.records import PaperRecord


@dataclass(frozen=True)
class ParsedListing:
    """The records of one listing, in listing order, and the format they were read as."""

    format: str  # one of FORMATS
    records: list[PaperRecord]  # may be empty: a weekend listing is a valid, quiet listing
    title: str | None = None  # feed title when known


# C0/C1 controls, zero-width characters and bidi overrides: invisible, and the bidi ones can
# disguise a title. They become spaces and then collapse away.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_TAG = re.compile(
    r"<!--.*?-->|<!\[CDATA\[|\]\]>|<[!?][^<>]*>|</?(?P<name>[A-Za-z][A-Za-z0-9:-]*)(?:\s[^<>]*)?/?>",
    re.DOTALL,
)
# Tags that sit inside a word (H<sub>2</sub>O); every other tag separates words.
_INLINE_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "cite",
        "code",
        "em",
        "font",
        "i",
        "kbd",
        "mark",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "tt",
        "u",
        "var",
    }
)
_DROPPED_CONTENT = frozenset({"script", "style", "head", "template", "noscript", "svg", "math"})
_MAX_MESSAGE = 400


def one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Collapse ``text`` to one printable line of at most ``limit`` characters."""
    flat = collapse_ws(_INVISIBLE.sub(" ", text))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def listing_error(
    name: str,
    message: str,
    *,
    line: int | None = None,
    column: int | None = None,
    cls: type[ListingError] = ListingParseError,
) -> ListingError:
    """Build ``cls("NAME: line L, column C: message")`` as one line (not raised, returned)."""
    where = ""
    if line is not None:
        where = f"line {line}, column {column}: " if column is not None else f"line {line}: "
    return cls(one_line(f"{one_line(name, 200)}: {where}{message}"))


def _strip_tag(match: re.Match[str]) -> str:
    tag = match.group("name")
    return "" if tag is not None and tag.lower() in _INLINE_TAGS else " "


def plain_text(value: object) -> str:
    """Plain text as one line: tag-like sequences removed, controls and whitespace collapsed.

    For sources that are plain text already (Hugging Face JSON, arXiv): entities are left
    alone because ``&`` there is a literal character, not markup.
    """
    if not isinstance(value, str):
        return ""
    return collapse_ws(_TAG.sub(_strip_tag, _INVISIBLE.sub(" ", value)))


class _TextExtractor(HTMLParser):
    """Collects the text nodes of an HTML fragment; entities are decoded once, by the parser."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED_CONTENT:
            self._skip += 1
        elif tag not in _INLINE_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _INLINE_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED_CONTENT:
            self._skip = max(0, self._skip - 1)
        elif tag not in _INLINE_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(value: object) -> str:
    """Text content of an HTML fragment as one line (script/style dropped, entities decoded).

    The decoded text goes through :func:`plain_text` again, so markup that was escaped in the
    source (``&lt;script&gt;``) does not come back as a tag either.
    """
    if not isinstance(value, str) or not value:
        return ""
    extractor = _TextExtractor()
    extractor.feed(value)
    extractor.close()
    return plain_text("".join(extractor.parts))


def opt_text(value: object) -> str | None:
    """Plain text or None when missing, empty or not a string."""
    return plain_text(value) or None


def opt_int(value: object) -> int | None:
    """A non-negative int, else None (bools and other types are ignored)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


_URL = re.compile(r"https?://[^\s<>\"'`\\{}|^]+", re.IGNORECASE)


def http_url(value: object) -> str | None:
    """An absolute http(s) URL, else None (javascript:, data:, relative or garbled values)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if _URL.fullmatch(text) and len(text) <= 2000 else None


def parse_datetime(value: object) -> datetime | None:
    """ISO 8601 or RFC 822 date-time as an aware UTC datetime; naive means UTC; else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    try:
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def arxiv_pdf_url(arxiv_id: str, version: int | None = None) -> str:
    """The arXiv PDF URL of an id (with the version when known)."""
    return f"https://arxiv.org/pdf/{arxiv_id}" + (f"v{version}" if version else "")


def unique(items: list[str]) -> tuple[str, ...]:
    """Non-empty items in first-seen order without repeats."""
    return tuple(dict.fromkeys(item for item in items if item))
