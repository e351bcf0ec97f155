"""Shared pieces of the listing parsers: the result type, error messages, text and value cleaning.

Every parser turns untrusted bytes into :class:`~digest.records.PaperRecord` values, so the
helpers here are the one place that decides what "clean" means: a title is always one line of
plain text, markup is never passed through, URLs are http(s) only, and every error message is a
single line that starts with the listing's name.
"""

from __future__ import annotations

import email.utils
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

from digest.errors import ListingError, ListingParseError
from digest.store.identity import collapse_ws
from digest.store.records import PaperRecord


@dataclass(frozen=True)
class ParsedListing:
    """The records of one listing, in listing order, and the format they were read as."""

    format: str  # one of FORMATS
    records: list[PaperRecord]  # may be empty: a weekend listing is a valid, quiet listing
    title: str | None = None  # feed title when known
    capped: dict[str, int] = field(default_factory=dict)  # field → records cut to the limits


# C0/C1 controls, zero-width characters and bidi overrides: invisible, and the bidi ones can
# disguise a title. They become spaces and then collapse away.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# Lone surrogates (JSON "\\ud800") are not characters: no store or stream can encode them.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Tags, declarations and processing instructions, never reaching past the next "<" (a
# quoted attribute value may hold ">"), so a scan costs at most the distance to the next
# "<": linear over any text. Comments and CDATA markers are found separately (see _pieces).
_TAG_BODY = (
    r"<!\[CDATA\[|\]\]>|<[!?][^<>]*>"
    r"|</?(?P<name>[A-Za-z][A-Za-z0-9:-]*)(?:\s(?:[^<>\"']|\"[^\"<]*\"|'[^'<]*')*)?/?>"
)
_TAG = re.compile(r"<!--|" + _TAG_BODY)
_TAG_NO_COMMENT = re.compile(_TAG_BODY)  # once no "-->" is left: "<!--" is no comment start
_COMMENT_END = "-->"
# Character references as HTML writes them; digits bounded (int() refuses > 4,300 digits).
_ENTITY = re.compile(r"&(?:#[0-9]{1,8};?|#[xX][0-9a-fA-F]{1,8};?|[A-Za-z][A-Za-z0-9]{1,31};?)")
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


def scrub_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (a no-op for ASCII)."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Collapse ``text`` to one printable line of at most ``limit`` characters."""
    flat = collapse_ws(_INVISIBLE.sub(" ", scrub_surrogates(text)))
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


class _Piece(NamedTuple):
    kind: str  # "text", "tag" (name set), "end" (an end tag, name set) or "other"
    text: str
    name: str = ""


def _pieces(text: str) -> Iterator[_Piece]:
    """Split markup into text, tags and the rest (comments, declarations, CDATA markers).

    One pass, linear in the length of ``text``. A comment runs to the next ``-->``; once no
    ``-->`` is left, ``<!--`` starts no comment (searching again for each would be
    quadratic) and is read like any ``<!…>`` declaration, or as text.
    """
    position, pattern = 0, _TAG
    while (match := pattern.search(text, position)) is not None:
        start, end = match.span()
        if match.group() == "<!--":
            close = text.find(_COMMENT_END, end)
            if close < 0:
                pattern = _TAG_NO_COMMENT
                match = pattern.search(text, start)
                if match is None:
                    break
                start, end = match.span()
            else:
                end = close + len(_COMMENT_END)
        if start > position:
            yield _Piece("text", text[position:start])
        name = match.group("name")
        if name is None:
            yield _Piece("other", text[start:end])
        else:
            yield _Piece("end" if text[start + 1] == "/" else "tag", text[start:end], name.lower())
        position = end
    if position < len(text):
        yield _Piece("text", text[position:])


def _strip_tag(match: re.Match[str]) -> str:
    return "" if match.group("name") in _INLINE_TAGS else " "


def _strip_tags(text: str) -> str:
    if "<" not in text and "]]>" not in text:
        return text
    if "<!--" in text:  # comments become spaces; the tags are left to the sub below
        text = "".join(
            " " if p.kind == "other" and p.text.startswith("<!--") else p.text
            for p in _pieces(text)
        )
    return _TAG_NO_COMMENT.sub(_strip_tag, text)


def plain_text(value: object) -> str:
    """Plain text as one line: tag-like sequences removed, controls and whitespace collapsed.

    For sources that are plain text already (Hugging Face JSON, arXiv): entities are left
    alone because ``&`` there is a literal character, not markup.
    """
    if not isinstance(value, str):
        return ""
    return collapse_ws(_strip_tags(_INVISIBLE.sub(" ", value)))


def _unescape(text: str) -> str:
    return _ENTITY.sub(lambda match: html.unescape(match.group()), text) if "&" in text else text


_DROPPED_OPEN = re.compile(r"<(?:" + "|".join(sorted(_DROPPED_CONTENT)) + r")[\s/>]", re.IGNORECASE)


def _html_tag(match: re.Match[str]) -> str:
    name = match.group("name")
    return "" if name is None or name.lower() in _INLINE_TAGS else " "


def html_to_text(value: object) -> str:
    """Text content of an HTML fragment as one line (script/style dropped, entities decoded).

    One linear pass over the markup (the standard library's HTMLParser is quadratic on text
    such as ``<a<a<a…``). The decoded text goes through :func:`plain_text` again, so markup
    that was escaped in the source (``&lt;script&gt;``) does not come back as a tag either.
    """
    if not isinstance(value, str) or not value:
        return ""
    if "<!--" not in value and not _DROPPED_OPEN.search(value):
        # No comment and no element whose content is dropped: tags out, entities decoded.
        return plain_text(_unescape(_TAG_NO_COMMENT.sub(_html_tag, value)))
    parts: list[str] = []
    skip = 0  # depth inside script, style … whose content is not text
    for piece in _pieces(value):
        if piece.kind == "text":
            if not skip:
                parts.append(_unescape(piece.text))
        elif piece.name in _DROPPED_CONTENT:
            if piece.kind == "end":
                skip = max(0, skip - 1)
            elif not piece.text.endswith("/>"):
                skip += 1
        elif piece.kind != "other" and piece.name not in _INLINE_TAGS and not skip:
            parts.append(" ")
    return plain_text("".join(parts))


def opt_text(value: object) -> str | None:
    """Plain text or None when missing, empty or not a string."""
    return plain_text(value) or None


# The store's counts (upvotes, stars, versions) are 32-bit integer columns on PostgreSQL.
MAX_COUNT = 2**31 - 1


def opt_int(value: object) -> int | None:
    """A non-negative int that a count column holds, else None (bools, other types ignored)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
        return value
    return None


_URL = re.compile(r"https?://[^\s<>\"'`\\{}|^\ud800-\udfff]+", re.IGNORECASE)
MAX_URL = 2000


def http_url(value: object) -> str | None:
    """An absolute http(s) URL, else None (javascript:, data:, relative or garbled values)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if len(text) <= MAX_URL and _URL.fullmatch(text) else None


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
        except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: year 10**20
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
