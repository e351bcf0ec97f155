"""The arXiv query API (``export.arxiv.org/api/query``): Atom with OpenSearch totals.

Entry ids are ``http://arxiv.org/abs/IDvN``; ``published`` is v1, ``updated`` this version.
A failed query is not an HTTP error but a feed whose single entry is titled ``Error``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from digest.parsers.common import (
    arxiv_pdf_url,
    http_url,
    listing_error,
    parse_datetime,
    plain_text,
    unique,
)
from digest.parsers.tex import author_name, decode_tex
from digest.parsers.xmltree import NS_ARXIV, NS_ATOM, NS_OPENSEARCH, XmlDoc, child_text, local
from digest.store.identity import normalize_doi, parse_arxiv_id
from digest.store.records import PaperRecord

_A = f"{{{NS_ATOM}}}"
_X = f"{{{NS_ARXIV}}}"


def is_arxiv_api(doc: XmlDoc) -> bool:
    """True for an export API response (OpenSearch totals or ``arxiv.org/abs`` entry ids)."""
    if doc.root.tag != f"{_A}feed":
        return False
    if NS_OPENSEARCH in doc.namespaces or "arxiv.org/api" in child_text(doc.root, f"{_A}id"):
        return True
    # Without those markers, only a feed made entirely of arXiv abstract pages (a blog that
    # links one paper is still a blog).
    ids = [child_text(entry, f"{_A}id") for entry in doc.root.iter(f"{_A}entry")]
    return bool(ids) and all("arxiv.org/abs/" in entry_id for entry_id in ids)


def _links(entry: ET.Element) -> tuple[str | None, str | None, str | None]:
    """(abs page, pdf, doi resolver) links of an entry."""
    page = pdf = doi = None
    for link in entry.findall(f"{_A}link"):
        href = http_url(link.get("href"))
        if link.get("title") == "pdf" or link.get("type") == "application/pdf":
            pdf = pdf or href
        elif link.get("title") == "doi":
            doi = doi or href
        elif link.get("rel", "alternate") == "alternate":
            page = page or href
    return page, pdf, doi


def _entry(entry: ET.Element, index: int, name: str) -> PaperRecord:
    entry_id = child_text(entry, f"{_A}id")
    title = plain_text(decode_tex(entry.findtext(f"{_A}title") or ""))
    parsed = parse_arxiv_id(entry_id)
    if parsed is None:
        raise listing_error(name, f"entry {index}: not an arXiv id: {entry_id or 'none given'}")
    arxiv_id, version = parsed
    if not title:
        raise listing_error(name, f"entry {index} ({arxiv_id}): no title")
    page, pdf, doi_link = _links(entry)
    primary = entry.find(f"{_X}primary_category")
    categories = [primary.get("term", "") if primary is not None else ""]
    categories += [c.get("term", "") for c in entry.findall(f"{_A}category")]
    doi = normalize_doi(child_text(entry, f"{_X}doi") or doi_link or "")
    extra = {
        key: value
        for key, value in (
            ("updated", child_text(entry, f"{_A}updated")),
            ("comment", child_text(entry, f"{_X}comment")),
        )
        if value
    }
    return PaperRecord(
        title=title,
        abstract=plain_text(decode_tex(entry.findtext(f"{_A}summary") or "")),
        authors=tuple(
            author
            for element in entry.findall(f"{_A}author")
            if (author := author_name(child_text(element, f"{_A}name")))
        ),
        arxiv_id=arxiv_id,
        version=version,
        doi=doi,
        url=page or f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=pdf or arxiv_pdf_url(arxiv_id, version),
        published=parse_datetime(child_text(entry, f"{_A}published")),
        categories=unique([plain_text(category) for category in categories]),
        journal_ref=child_text(entry, f"{_X}journal_ref") or None,
        external_id=entry_id,
        extra=extra,
    )


def parse_arxiv_api(doc: XmlDoc, name: str) -> tuple[list[PaperRecord], str | None]:
    """Records of an export API response, in result order; an ``Error`` entry raises."""
    if doc.root.tag != f"{_A}feed":
        raise listing_error(name, f"not an Atom feed (root element <{local(doc.root.tag)}>)")
    entries = doc.root.findall(f"{_A}entry")
    for entry in entries:
        if child_text(entry, f"{_A}title") == "Error":
            reason = child_text(entry, f"{_A}summary") or "no reason given"
            raise listing_error(name, f"arXiv API error: {reason}")
    records = [_entry(entry, index, name) for index, entry in enumerate(entries)]
    return records, child_text(doc.root, f"{_A}title") or None
