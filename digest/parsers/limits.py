"""Length limits on what a listing may put in the store, applied to every parsed record.

A listing is untrusted: nothing stops a 10 MB title (it made a 41.6 MB email and 20 MB
feeds) or a list of 100,000 authors. Every record leaves :func:`bound_records` within the
limits below; text over its limit is cut at a word boundary and ends in "…", and the
listing reports how many records had each field cut. The limits sit far above real papers:

=================  ===========  ====================================================
field              limit        real papers
=================  ===========  ====================================================
title              500 chars    arXiv titles rarely pass 250
abstract           5,000 chars  arXiv allows 1,920; long journal abstracts ~3,500
ai_summary         5,000 chars  one or two sentences
authors            200 names    large collaborations list thousands; the email shows
                                three and the feeds ten, author interests see 200
one author         200 chars
keywords,          50 items of  a handful of short terms
categories         100 chars
other text         300 chars    organization, journal reference, the source's own id
URLs               2,000 chars  longer ones are dropped (as the parsers already do)
DOI, arXiv id      196, 64      never cut (a cut id names another paper): dropped
counts             2**31 - 1    upvotes, stars, comments, version; larger ones dropped
=================  ===========  ====================================================

Lone surrogates (a JSON ``"\\ud800"``) become U+FFFD here too: no database encodes them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from digest.parsers.common import MAX_COUNT, MAX_URL, scrub_surrogates
from digest.store.records import PaperRecord

TITLE_CHARS = 500
ABSTRACT_CHARS = 5_000
AUTHORS = 200
AUTHOR_CHARS = 200
TERMS = 50
TERM_CHARS = 100
SHORT_CHARS = 300

_TEXTS = (
    ("title", TITLE_CHARS),
    ("abstract", ABSTRACT_CHARS),
    ("ai_summary", ABSTRACT_CHARS),
    ("organization", SHORT_CHARS),
    ("journal_ref", SHORT_CHARS),
    ("announce_type", SHORT_CHARS),
    ("external_id", SHORT_CHARS),
)
# Identifiers are never cut (a cut id names another paper): too long means garbage, dropped.
# A paper's key is "doi:<doi>" in a 200-character column.
_IDS = (("arxiv_id", 64), ("doi", 196))
_URLS = ("url", "pdf_url", "github_repo", "project_page", "thumbnail")
_LISTS = (
    ("authors", AUTHORS, AUTHOR_CHARS),
    ("keywords", TERMS, TERM_CHARS),
    ("categories", TERMS, TERM_CHARS),
)
_COUNTS = ("version", "upvotes", "comments", "github_stars")


def cut(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else cut at a word boundary plus "…"."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space > limit // 2:  # one enormous word is cut inside the word rather than dropped
        head = head[:space]
    return head.rstrip(" ,;:.-–—") + "…"


def _clean(text: str, limit: int) -> str:
    return cut(scrub_surrogates(text), limit)


def _texts(record: PaperRecord, changes: dict[str, Any], capped: list[str]) -> None:
    for name, limit in _TEXTS:
        value = getattr(record, name)
        if value and (len(value) > limit or not value.isascii()):
            bounded = _clean(value, limit)
            if bounded != value:
                changes[name] = bounded
                if len(value) > limit:
                    capped.append(name)


def _links(record: PaperRecord, changes: dict[str, Any], capped: list[str]) -> None:
    for name, limit in (*_IDS, *((url, MAX_URL) for url in _URLS)):
        value = getattr(record, name)
        if value and len(value) > limit:
            changes[name] = None
            capped.append(name)
        elif value and not value.isascii() and scrub_surrogates(value) != value:
            changes[name] = None  # an id or URL with a broken character is no link at all


def _lists(record: PaperRecord, changes: dict[str, Any], capped: list[str]) -> None:
    for name, items, limit in _LISTS:
        values: tuple[str, ...] = getattr(record, name)
        if len(values) > items or any(len(v) > limit or not v.isascii() for v in values):
            bounded = tuple(_clean(value, limit) for value in values[:items])
            if bounded != values:
                changes[name] = bounded
                if len(values) > items or any(len(value) > limit for value in values):
                    capped.append(name)


def bound_record(record: PaperRecord) -> tuple[PaperRecord, list[str]]:
    """The record within the limits, and the names of the fields that had to be cut."""
    changes: dict[str, Any] = {}
    capped: list[str] = []
    _texts(record, changes, capped)
    _links(record, changes, capped)
    _lists(record, changes, capped)
    for name in _COUNTS:
        count = getattr(record, name)
        if count is not None and not 0 <= count <= MAX_COUNT:
            changes[name] = None
            capped.append(name)
    if record.extra and any(len(v) > SHORT_CHARS or not v.isascii() for v in record.extra.values()):
        changes["extra"] = {key: _clean(v, SHORT_CHARS) for key, v in record.extra.items()}
    return (replace(record, **changes) if changes else record), capped


def bound_records(records: list[PaperRecord]) -> tuple[list[PaperRecord], dict[str, int]]:
    """Every record within the limits, and how many records had each field cut."""
    counts: Counter[str] = Counter()
    bounded: list[PaperRecord] = []
    for record in records:
        within, capped = bound_record(record)
        bounded.append(within)
        counts.update(capped)
    return bounded, dict(sorted(counts.items()))
