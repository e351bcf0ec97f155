"""Any other RSS/Atom/RDF feed (journals, blogs, preprint servers), read with feedparser.

The bytes have already passed :func:`digest.parsers.xmltree.parse_xml`, so feedparser never
sees an entity bomb; a document it still finds not well-formed is an error, not a silently
"bozo" feed. Summaries are HTML: they become plain text here.
"""

from __future__ import annotations

import io
import time
import xml.sax
from datetime import UTC, datetime
from typing import Any

import feedparser

from digest.parsers.common import html_to_text, http_url, listing_error, plain_text, unique
from digest.parsers.tex import author_name
from digest.store.identity import normalize_doi, parse_arxiv_id, title_hash
from digest.store.records import PaperRecord


def _when(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if isinstance(value, time.struct_time):
            try:
                return datetime(*value[:6], tzinfo=UTC)
            except ValueError:
                continue
    return None


def _authors(entry: Any) -> tuple[str, ...]:
    names = [author_name(str(author.get("name", ""))) for author in entry.get("authors") or []]
    if not any(names) and isinstance(entry.get("author"), str):
        names = [author_name(entry["author"])]
    return unique(names)


def _summary(entry: Any) -> str:
    summary = entry.get("summary")
    if not summary and entry.get("content"):
        summary = entry["content"][0].get("value")
    return html_to_text(summary)


def _record(entry: Any, index: int, name: str) -> PaperRecord:
    title = html_to_text(entry.get("title"))
    if not title:
        raise listing_error(name, f"entry {index}: no title")
    entry_id = plain_text(entry.get("id")) or None
    link = http_url(entry.get("link"))
    arxiv = next((p for c in (entry_id, link) if c and (p := parse_arxiv_id(c))), None)
    doi_candidates = (entry.get("prism_doi"), entry.get("dc_identifier"), entry_id, link)
    doi = next((d for c in doi_candidates if isinstance(c, str) and (d := normalize_doi(c))), None)
    return PaperRecord(
        title=title,
        abstract=_summary(entry),
        authors=_authors(entry),
        arxiv_id=arxiv[0] if arxiv else None,
        version=arxiv[1] if arxiv else None,
        doi=doi,
        url=link,
        published=_when(entry),
        categories=unique([plain_text(tag.get("term")) for tag in entry.get("tags") or []]),
        journal_ref=plain_text(entry.get("prism_publicationname")) or None,
        external_id=entry_id or link or f"title:{title_hash(title)}",
    )


def parse_feed(data: bytes, name: str) -> tuple[list[PaperRecord], str | None]:
    """Records of an RSS/Atom feed, in feed order."""
    # A BytesIO, never the bytes themselves: feedparser treats a bytes/str argument that looks
    # like a path or URL as one and opens it.
    parsed = feedparser.parse(io.BytesIO(data), resolve_relative_uris=False, sanitize_html=False)
    problem = parsed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXParseException):
        raise listing_error(
            name,
            f"malformed feed: {problem.getMessage()}",
            line=problem.getLineNumber(),
            column=(problem.getColumnNumber() or 0) + 1,
        )
    if not parsed.get("version"):
        raise listing_error(name, "not an RSS or Atom feed")
    records = [_record(entry, index, name) for index, entry in enumerate(parsed.entries)]
    return records, html_to_text(parsed.feed.get("title")) or None
