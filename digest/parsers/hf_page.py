"""Saved Hugging Face paper-listing pages (plain text, see ``shared/seeds/README.md``).

Layout: a header of short lines (``new``, ``Get trending papers in your email inbox!``,
``Subscribe``, maybe ``Daily Papers``, ``byAK and the research community``, maybe the page's
date), then one block per paper separated by blank lines: the title (one short line), the
abstract (one long paragraph), and optionally three metadata lines: ``  • N authors`` or
``<org-handle> <Org Name>``, then ``·``, then ``Jul 7, 2022`` / ``Dec 2 3`` (date, upvotes).

There are no ids: the records are keyed by title. A title is told from an abstract by
position (a block starts with its title) and by shape (abstracts are long prose), so a block
whose abstract is missing, or whose metadata is missing, still parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from digest.parsers.common import listing_error, plain_text
from digest.store.records import PaperRecord

_HEADER_LINES = frozenset({"new", "subscribe", "daily papers"})
_BYLINE = re.compile(r"^by\s*AK and the research community$", re.IGNORECASE)
_TRENDING = "get trending papers in your email inbox!"
# Page chrome that a "save as text" may keep below the list; never paper titles.
_CHROME = frozenset(
    {
        "load more",
        "see all",
        "system theme",
        "company",
        "tos",
        "privacy",
        "about",
        "jobs",
        "website",
        "pricing",
        "docs",
    }
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DATE = re.compile(
    r"^(?P<mon>[A-Za-z]{3})\s+(?P<day>\d{1,2})(?:,\s*(?P<year>\d{4}))?(?:\s+(?P<votes>\d{1,7}))?$"
)
_AUTHORS = re.compile(r"^[•·*-]\s*(?P<n>\d+)\s+authors?$", re.IGNORECASE)
_ORG = re.compile(r"^(?P<handle>[\w][\w.-]*)\s+(?P<name>\S.*)$")
_BINARY = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_TITLE_MAX = 300


@dataclass
class _Block:
    line: int
    title: str
    abstract: list[str] = field(default_factory=list)
    meta: list[str] | None = None


def _paragraphs(text: str) -> list[tuple[int, list[str]]]:
    """(first line number, stripped lines) of each blank-line separated paragraph."""
    paragraphs: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            if current:
                paragraphs.append((start, current))
            current = []
            continue
        if not current:
            start = number
        current.append(line)
    if current:
        paragraphs.append((start, current))
    return _join_split_metadata(paragraphs)


def _join_split_metadata(paragraphs: list[tuple[int, list[str]]]) -> list[tuple[int, list[str]]]:
    """Re-join metadata whose three lines a save separated by blank lines."""
    joined: list[tuple[int, list[str]]] = []
    index = 0
    while index < len(paragraphs):
        start, lines = paragraphs[index]
        following = paragraphs[index + 1][1] if index + 1 < len(paragraphs) else []
        if lines == ["·"] and len(following) == 1 and _DATE.match(following[0]):
            meta = ["·", *following]
            if _is_who(joined):
                start, who = joined.pop()
                meta = who + meta
            joined.append((start, meta))
            index += 2
            continue
        joined.append((start, lines))
        index += 1
    return joined


def _is_who(joined: list[tuple[int, list[str]]]) -> bool:
    """Is the last paragraph (before a lone ``·``) the authors/organization line?"""
    lines = joined[-1][1] if joined else []
    if len(lines) != 1:
        return False
    if _AUTHORS.match(lines[0]):
        return True
    # An organization line looks like any short line: accept it only after an abstract.
    before = joined[-2][1] if len(joined) >= 2 else []
    return bool(_ORG.match(lines[0])) and _is_prose(" ".join(before))


def _is_marker(line: str) -> bool:
    return line.lower() == _TRENDING or bool(_BYLINE.match(line))


def _is_header(line: str) -> bool:
    return line.lower() in _HEADER_LINES or _is_marker(line)


def looks_like_page(text: str) -> bool:
    """True when the text opens with the Hugging Face page header."""
    for line in (line.strip() for line in text.lstrip("\ufeff").splitlines()[:40]):
        if _is_marker(line):
            return True
        if line and not _is_header(line):
            return False
    return False


def _is_meta(lines: list[str]) -> bool:
    return "·" in lines and bool(_DATE.match(lines[-1])) and len(lines) <= 3


def _is_prose(text: str) -> bool:
    """Abstract-like: long, or a sentence ending in a full stop (titles rarely do)."""
    words = len(text.split())
    return len(text) > _TITLE_MAX or words >= 40 or (text.endswith(".") and words >= 8)


def _resolve(month: int, day: int, year: int | None, anchor: date) -> date | None:
    """The date; without a year, the latest such day not after ``anchor``."""
    if year is not None:
        try:
            return date(year, month, day)
        except ValueError:
            return None
    for candidate_year in range(anchor.year, anchor.year - 8, -1):  # 8 years: Feb 29 too
        try:
            candidate = date(candidate_year, month, day)
        except ValueError:
            continue
        if candidate <= anchor:
            return candidate
    return None


def _parse_date(text: str, anchor: date) -> tuple[date, int | None] | None:
    match = _DATE.match(text)
    month = _MONTHS.get(match.group("mon").lower()) if match else None
    if match is None or month is None:
        return None
    year = int(match.group("year")) if match.group("year") else None
    resolved = _resolve(month, int(match.group("day")), year, anchor)
    votes = match.group("votes")
    return (resolved, int(votes) if votes else None) if resolved else None


def _skip_header(
    paragraphs: list[tuple[int, list[str]]], name: str, today: date
) -> tuple[int, date]:
    """Index of the first paper paragraph, and the date that year-less dates resolve against."""
    index, anchor, seen_marker, after_byline = 0, today, False, False
    while index < len(paragraphs):
        lines = paragraphs[index][1]
        if not all(_is_header(line) for line in lines):
            # The page's own date, if shown, comes right after the byline.
            page_date = _parse_date(lines[0], today) if after_byline and len(lines) == 1 else None
            if page_date and page_date[1] is None:
                anchor = page_date[0]
                index += 1
            break
        seen_marker = seen_marker or any(_is_marker(line) for line in lines)
        after_byline = bool(_BYLINE.match(lines[-1]))
        index += 1
    if not seen_marker:
        raise listing_error(name, "not a saved Hugging Face listing page (no page header found)")
    return index, anchor


def _is_clearly_prose(text: str) -> bool:
    """Too long for a title whatever its punctuation."""
    return len(text) > _TITLE_MAX or len(text.split()) >= 40


def _blocks(paragraphs: list[tuple[int, list[str]]], name: str) -> list[_Block]:
    blocks: list[_Block] = []
    for line, lines in paragraphs:
        current = blocks[-1] if blocks and blocks[-1].meta is None else None
        if _is_meta(lines):
            if current is None:
                raise listing_error(name, "paper details without a title before them", line=line)
            current.meta = lines
            continue
        text = " ".join(lines)  # a hard-wrapped paragraph is still one paragraph
        if "·" in lines:
            raise listing_error(name, f"unrecognised paper details: {text[:80]}", line=line)
        if text.lower() in _CHROME:
            continue
        if current is None:
            # Where a title must come (page start, after a paper's details), any paragraph
            # short enough is one, even a sentence-like title ending in a full stop.
            if _is_clearly_prose(text):
                raise listing_error(
                    name,
                    f"expected a paper title, found a paragraph of {len(text)} characters",
                    line=line,
                )
            blocks.append(_Block(line=line, title=text))
            continue
        # Right after a title: its abstract, or the next title when the abstract is missing.
        # After an abstract: the next title, unless it is plainly more abstract text.
        more = _is_clearly_prose(text) if current.abstract else _is_prose(text)
        if more:
            current.abstract.append(text)
        else:
            blocks.append(_Block(line=line, title=text))
    return blocks


def _record(block: _Block, anchor: date, name: str) -> PaperRecord:
    title = plain_text(block.title)
    if not title:
        raise listing_error(name, "a paper title with no text in it", line=block.line)
    published = upvotes = organization = None
    extra: dict[str, str] = {}
    if block.meta is not None:
        who = block.meta[0] if block.meta[0] != "·" else ""
        authors = _AUTHORS.match(who)
        if authors:
            extra["author_count"] = authors.group("n")
        elif who:  # "<org-handle> <Org Name>", or a bare handle
            handle, _, label = who.partition(" ")
            organization = plain_text(label) or plain_text(handle)
            extra["org_handle"] = plain_text(handle)
        when = _parse_date(block.meta[-1], anchor)
        if when is None:
            raise listing_error(
                name, f"{title[:60]}: impossible date {block.meta[-1]!r}", line=block.line
            )
        published = datetime(when[0].year, when[0].month, when[0].day, tzinfo=UTC)
        upvotes = when[1] or 0  # the page shows no count when nobody upvoted
    return PaperRecord(
        title=title,
        abstract=plain_text(" ".join(block.abstract)),
        published=published,
        upvotes=upvotes,
        organization=organization,
        external_id=None,
        extra=extra,
    )


def parse_hf_page(data: bytes, name: str, *, now: datetime) -> tuple[list[PaperRecord], str | None]:
    """Records of a saved listing page, in page order."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise listing_error(name, f"not a text page: invalid UTF-8 at byte {exc.start}") from exc
    if binary := _BINARY.search(text):
        line = text.count("\n", 0, binary.start()) + 1
        raise listing_error(name, "not a text page: binary control characters", line=line)
    paragraphs = _paragraphs(text.replace("\r\n", "\n").replace("\r", "\n"))
    start, anchor = _skip_header(paragraphs, name, now.astimezone(UTC).date())
    header = {line.lower() for _, lines in paragraphs[:start] for line in lines}
    records = [_record(block, anchor, name) for block in _blocks(paragraphs[start:], name)]
    return records, "Daily Papers" if "daily papers" in header else None
