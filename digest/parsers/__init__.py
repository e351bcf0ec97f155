"""Listing parsers: bytes in, :class:`~digest.records.PaperRecord` values out.

Formats (see ``docs/sources.md``): ``hf-json`` (Hugging Face Daily Papers API), ``arxiv-rss``
and ``arxiv-atom`` (arXiv listing feeds), ``arxiv-api`` (export.arxiv.org query API), ``feed``
(any other RSS/Atom feed) and ``hf-page`` (a saved Hugging Face listing page).

Parsing is pure and all-or-nothing: :func:`parse_listing` returns every record of a listing
or raises a :class:`~digest.errors.ListingError` whose one-line message starts with the
listing's name. Fetching is someone else's job: network sources pass the fetched bytes here.

>>> parse_listing(b"[]").records
[]
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from digest.config.formats import FORMATS
from digest.errors import ListingFormatError
from digest.parsers.arxiv import parse_arxiv_atom, parse_arxiv_rss
from digest.parsers.arxiv_api import parse_arxiv_api
from digest.parsers.common import ParsedListing, listing_error
from digest.parsers.detect import Sniffed, sniff
from digest.parsers.feed import parse_feed
from digest.parsers.files import read_bytes
from digest.parsers.hf_json import load_json, parse_hf_value
from digest.parsers.hf_page import parse_hf_page
from digest.parsers.limits import bound_records
from digest.parsers.xmltree import XmlDoc, parse_xml
from digest.store.records import PaperRecord

__all__ = ["FORMATS", "ParsedListing", "detect_format", "parse_listing", "read_listing_file"]

_XmlParser = Callable[[XmlDoc, str], tuple[list[PaperRecord], str | None]]
_XML_PARSERS: dict[str, _XmlParser] = {
    "arxiv-rss": parse_arxiv_rss,
    "arxiv-atom": parse_arxiv_atom,
    "arxiv-api": parse_arxiv_api,
}


def detect_format(data: bytes, *, filename: str = "") -> str:
    """The format of ``data``, judged by its content; ``filename`` only names it in errors.

    Raises ListingFormatError when the content is none of :data:`FORMATS` (and
    ListingParseError for XML refused as hostile: entity declarations, external references).
    """
    return sniff(data, filename or "<listing>").fmt


def _parse(sniffed: Sniffed, data: bytes, name: str, now: datetime) -> ParsedListing:
    fmt, payload = sniffed.fmt, sniffed.payload
    title: str | None = None
    if fmt == "hf-json":
        records = parse_hf_value(load_json(data, name) if payload is None else payload, name)
    elif fmt == "hf-page":
        records, title = parse_hf_page(data, name, now=now)
    else:
        # Always through defusedxml first: it also vets the bytes that feedparser will read.
        doc = payload if isinstance(payload, XmlDoc) else parse_xml(data, name)
        if fmt == "feed":
            records, title = parse_feed(data, name)
        else:
            records, title = _XML_PARSERS[fmt](doc, name)
    bounded, capped = bound_records(records)
    return ParsedListing(format=fmt, records=bounded, title=title, capped=capped)


def parse_listing(
    data: bytes,
    *,
    fmt: str = "auto",
    name: str = "<listing>",
    now: datetime | None = None,
) -> ParsedListing:
    """Parse one listing's bytes into records, in listing order.

    ``fmt`` is one of :data:`FORMATS` or ``"auto"`` (detect by content). ``name`` (a path or
    URL) starts every error message. ``now`` (default: the current UTC time) dates the
    year-less dates of saved pages. Raises a ListingError subclass; never returns a partial
    listing. Records come out within :mod:`digest.parsers.limits` (the listing's ``capped``
    counts the cuts).
    """
    if fmt == "auto":
        sniffed = sniff(data, name)
    elif fmt in FORMATS:
        sniffed = Sniffed(fmt)
    else:
        raise listing_error(
            name,
            f"unknown format {fmt!r}; expected auto or one of {', '.join(FORMATS)}",
            cls=ListingFormatError,
        )
    if not data or data.isspace():
        raise listing_error(name, "the file is empty")
    return _parse(sniffed, data, name, now or datetime.now(UTC))


def read_listing_file(
    path: Path,
    *,
    fmt: str = "auto",
    max_bytes: int = 50_000_000,
    now: datetime | None = None,
) -> ParsedListing:
    """Read and parse a listing file (gzip is unpacked transparently).

    Refuses a file, or a decompressed stream, over ``max_bytes`` with ListingTooLargeError
    before reading it all; an unreadable file is a ListingError naming it.
    """
    data = read_bytes(path, max_bytes=max_bytes)
    return parse_listing(data, fmt=fmt, name=str(path), now=now)
