"""Presentation helpers shared by the email and feed renderers.

Everything a template shows about a paper is prepared here as plain, already-sanitized
strings, so templates stay logic-free and the text part, the HTML part and the feeds say the
same thing. Titles and names come from third-party listings: they are collapsed to one line
(no CR/LF that could forge a text line or a header) and URLs are kept only when they are
plain http(s) (no ``javascript:`` links in an email).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from digest.render.views import ItemView

SNIPPET_CHARS = 300
# Papers whose display fields are remembered (about 1 KB each): a weekly run shows a few
# thousand papers to every subscriber, each paper in many digests.
PAPER_CACHE_SIZE = 8192
AUTHORS_SHOWN = 3
SUBJECT_TITLE_CHARS = 72
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# C0/C1 controls, surrogates and U+FFFE/U+FFFF (not XML 1.0 characters: lxml refuses them)
# become spaces; str.split() then removes every Unicode whitespace and line break (\r, \n,
# \x1c-\x1e, \x85, \u2028, \u2029 ...), so single_line() output is one line by
# str.splitlines() standards and safe in XML.
_CONTROLS = str.maketrans(
    dict.fromkeys((*range(0x20), *range(0x7F, 0xA0), *range(0xD800, 0xE000), 0xFFFE, 0xFFFF), " ")
)
_URL_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f<>\"'`\\]")
# "scheme://host/" of URLs safe_url accepted: a URL under one of them, with no unsafe character,
# is accepted without urlsplit (its scheme and host are the origin's whatever follows the
# slash). Every item's signed vote links are under the site's origin: 40 URLs a digest.
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.:-]+/", re.IGNORECASE)
_CHECKED_ORIGINS: set[str] = set()
_CHECKED_ORIGINS_MAX = 64
# RFC 4151 tag "specific" part: keep URI pchars readable, percent-encode anything else.
_TAG_SAFE = ";/?:@&=+$!*'(),"


def single_line(text: str) -> str:
    """Collapse whitespace and strip control characters: the result is one trimmed line."""
    if not text.isprintable():  # rare: only then pay for translate()
        text = text.translate(_CONTROLS)
    return " ".join(text.split())


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, cut at a word boundary to at most ``limit`` chars plus "…"."""
    head = text[: limit * 3]  # only the start is shown: don't normalize a whole abstract
    line = single_line(head)
    if len(line) <= limit:
        if len(head) == len(text):
            return line
        line = single_line(text)  # the head was mostly whitespace
        if len(line) <= limit:
            return line
    cut = line[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:  # a very long first word is cut mid-word rather than dropped
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL without spaces or quotes, else None."""
    if not url:
        return None
    origin = url[: url.find("/", 8) + 1]
    if origin in _CHECKED_ORIGINS and not _URL_UNSAFE.search(url):
        return url
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if _URL_UNSAFE.search(url):
        return None
    origin = url[: url.find("/", 8) + 1]
    if len(_CHECKED_ORIGINS) < _CHECKED_ORIGINS_MAX and _ORIGIN.fullmatch(origin):
        _CHECKED_ORIGINS.add(origin)
    return url


def wrap(text: str, width: int = 72) -> str:
    """Greedy word wrap for the text part (textwrap is ~20x slower for this simple case)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return "\n".join(lines)


_WEIGHT_SUFFIX = re.compile(
    r"\s*\^\s*[0-9.eE+-]+$"
)  # the profile syntax's "^2" (ranking/profile_text)


def interest_label(text: str) -> str:
    """An interest as a reader says it: ``robot learning^2`` → ``robot learning``,
    ``"RL: exploration"^0.5`` → ``RL: exploration`` (weights are for the ranker)."""
    label = _WEIGHT_SUFFIX.sub("", single_line(text))
    if len(label) >= 2 and label[0] == label[-1] == '"':
        label = label[1:-1].strip()
    return label


def authors_line(authors: tuple[str, ...], shown: int = AUTHORS_SHOWN) -> str:
    """``"A, B, C et al."`` for long author lists, all names for short ones."""
    names: list[str] = []
    for author in authors:
        name = single_line(author)
        if name:
            names.append(name)
            if len(names) > shown + 1:  # enough to know the list gets cut
                break
    if len(names) <= shown + 1:  # "A, B, C et al." is no shorter than four names
        return ", ".join(names)
    return ", ".join(names[:shown]) + " et al."


def as_utc(moment: datetime) -> datetime:
    """Aware datetimes pass through; naive ones are taken to be UTC (the store's convention)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def date_label(moment: datetime | None) -> str:
    """``"23 Nov 2026"``, or "" when unknown."""
    if moment is None:
        return ""
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"  # not locale-dependent


def upvotes_label(upvotes: int | None) -> str:
    """``"42 upvotes"``, ``"1 upvote"``, or "" when unknown or zero (zero says nothing)."""
    if not upvotes:
        return ""
    return f"{upvotes} upvote" + ("" if upvotes == 1 else "s")


def paper_entry_id(key: str, site_url: str) -> str:
    """A stable tag URI (RFC 4151) for a paper in feeds: depends on the key and host only."""
    host = (urlsplit(site_url).hostname or "localhost").lower()
    return f"tag:{host},2024:paper/{quote(key, safe=_TAG_SAFE)}"


def subscriber_feed_id(token: str, site_url: str) -> str:
    """The stable, opaque id of a subscriber's feed: a tag URI (RFC 4151) on the site's host
    whose specific part is a one-way hash of the subscriber's token.

    Not the subscriber's row id (sequential: it tells anyone how many subscribed before) and
    not the token (it grants access to the feed and the manage page). Derived from the token,
    not keyed with the secret key: rotating the key must not make every reader see new feeds,
    and the token's 192 random bits cannot be recovered from the hash. Stable as long as the
    token and the host are (entry ids depend on the host too)."""
    host = (urlsplit(site_url).hostname or "localhost").lower()
    opaque = hashlib.sha256(b"paper-digest feed id\x00" + token.encode("utf-8")).hexdigest()
    return f"tag:{host},2024:feed/{opaque[:32]}"


@dataclass(slots=True)  # not frozen: a frozen dataclass is 3x slower to build, 20 per digest
class ItemContext:
    """One paper as the templates see it: every field is display-ready and single-line."""

    number: int
    key: str
    title: str
    url: str | None
    authors: str
    date: str  # "22 Oct 2024", or "" when no date is known
    date_kind: str  # what the date is: "published" (the paper's own) or "listed" (featured)
    reason: str
    upvotes: str
    code_url: str | None
    pdf_url: str | None
    snippet: str
    matched: tuple[str, ...]
    more_url: str | None = None  # "more like this" / "less like this" (the reader's feedback)
    less_url: str | None = None


@dataclass(frozen=True, slots=True)
class PaperDisplay:
    """The display fields of a paper that no subscriber changes (see :func:`paper_display`)."""

    title: str
    url: str | None
    authors: str
    code_url: str | None
    pdf_url: str | None
    snippet: str


@functools.lru_cache(maxsize=PAPER_CACHE_SIZE)
def paper_display(
    title: str,
    url: str | None,
    abstract: str,
    authors: tuple[str, ...],
    code_url: str | None,
    pdf_url: str | None,
) -> PaperDisplay:
    """Sanitize a paper's text and links once, however many digests show it.

    The costly fields (URL checks, snippet, author line) are a pure function of these
    arguments, so they are remembered in a bounded LRU; the cheap ones that depend on the
    subscriber (number, reason, matched) or on a datetime's zone (date) are not in the key.
    """
    return PaperDisplay(
        title=single_line(title) or "(untitled)",
        url=safe_url(url),
        authors=authors_line(authors),
        code_url=safe_url(code_url),
        pdf_url=safe_url(pdf_url),
        snippet=shorten(abstract, SNIPPET_CHARS),
    )


def item_context(item: ItemView, number: int) -> ItemContext:
    """Prepare one item for display (number is its 1-based position)."""
    paper = paper_display(
        item.title, item.url, item.abstract, item.authors, item.code_url, item.pdf_url
    )
    return ItemContext(
        number=number,
        key=item.key,
        title=paper.title,
        url=paper.url,
        authors=paper.authors,
        date=date_label(item.published or item.listed),
        date_kind="published" if item.published or not item.listed else "listed",
        reason=single_line(item.reason),
        upvotes=upvotes_label(item.upvotes),
        code_url=paper.code_url,
        pdf_url=paper.pdf_url,
        snippet=paper.snippet,
        matched=tuple(filter(None, map(single_line, item.matched))),
        more_url=safe_url(item.more_url),
        less_url=safe_url(item.less_url),
    )


def subject_line(site_name: str, items: tuple[ItemView, ...], period_label: str) -> str:
    """The email subject: count and top title; a "nothing new" line for an empty digest."""
    site = single_line(site_name) or "Paper digest"
    if not items:
        period = single_line(period_label)
        return f"{site}: nothing new" + (f" — {period}" if period else "")
    count = len(items)
    noun = "paper" if count == 1 else "papers"
    top = shorten(items[0].title, SUBJECT_TITLE_CHARS) or "(untitled)"
    return f"{site}: {count} new {noun} — {top}"
