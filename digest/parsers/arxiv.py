"""arXiv listing feeds: ``rss.arxiv.org/rss/CAT`` (RSS 2.0) and ``rss.arxiv.org/atom/CAT``.

Both carry the same facts: an ``oai:arXiv.org:IDvN`` identifier, a description of the form
``arXiv:IDvN Announce Type: new \\nAbstract: …``, categories, the announcement date,
``arxiv:announce_type``, all authors in one ``dc:creator`` string, and optional
``arxiv:DOI`` / ``arxiv:journal_reference``. An unknown category yields a feed titled
``Feed error for query: …`` with no items.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from digest.parsers.common import (
    arxiv_pdf_url,
    http_url,
    listing_error,
    parse_datetime,
    plain_text,
    unique,
)
from digest.parsers.tex import author_name, decode_tex, split_creators
from digest.parsers.xmltree import (
    NS_ARXIV,
    NS_ATOM,
    NS_DC,
    XmlDoc,
    arxiv_child,
    child_text,
    children_text,
    local,
    raw_text,
)
from digest.store.identity import normalize_doi, parse_arxiv_id
from digest.store.records import PaperRecord

_A = f"{{{NS_ATOM}}}"
_DESCRIPTION = re.compile(
    r"^\s*arXiv:(?P<id>\S+)\s+Announce\s+Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:)?\s*(?P<abs>.*)$",
    re.DOTALL | re.IGNORECASE,
)
_ERROR_TITLE = "feed error for query"


@dataclass(frozen=True)
class _Item:
    """The format-independent facts of one RSS item or Atom entry."""

    index: int
    title: str
    link: str
    description: str
    identifier: str
    categories: list[str]
    date: datetime | None
    creators: list[str]


def _record(item: _Item, announce_type: str, doi: str, journal_ref: str, name: str) -> PaperRecord:
    described = _DESCRIPTION.match(item.description)
    abstract = described.group("abs") if described else item.description
    described_id = described.group("id") if described else ""
    candidates = (item.identifier, described_id, item.link)
    parsed = next((found for c in candidates if c and (found := parse_arxiv_id(c))), None)
    if parsed is None:
        raise listing_error(
            name,
            f"item {item.index}: no arXiv identifier in guid, description "
            f"or link ({item.identifier or item.link or 'none given'})",
        )
    arxiv_id, version = parsed
    if version is None and described_id:  # the link has no version; the description does
        version = (parse_arxiv_id(described_id) or (arxiv_id, None))[1]
    title = plain_text(decode_tex(item.title))
    if not title:
        raise listing_error(name, f"item {item.index} ({arxiv_id}): no title")
    kind = (announce_type or (described.group("type") if described else "")).lower() or None
    authors = [author for creator in item.creators for author in split_creators(creator)]
    return PaperRecord(
        title=title,
        abstract=plain_text(decode_tex(abstract)),
        authors=tuple(authors),
        arxiv_id=arxiv_id,
        version=version,
        doi=normalize_doi(doi) if doi else None,
        url=http_url(item.link) or f"https://arxiv.org/abs/{arxiv_id}",
        pdf_url=arxiv_pdf_url(arxiv_id, version),
        # The feed date is the announcement; it is the paper's own date only for a first version.
        published=item.date if version == 1 else None,
        listed_at=item.date,
        categories=unique(item.categories),
        journal_ref=journal_ref or None,
        announce_type=kind,
        external_id=item.identifier or None,
    )


def _check_feed_error(title: str, name: str) -> None:
    if title.lower().startswith(_ERROR_TITLE):
        raise listing_error(name, f"arXiv refused the query: {title}")


def parse_arxiv_rss(doc: XmlDoc, name: str) -> tuple[list[PaperRecord], str | None]:
    """Records of an arXiv RSS 2.0 listing, in feed order."""
    channel = doc.root.find("channel")
    if local(doc.root.tag) != "rss" or channel is None:
        raise listing_error(name, f"not an RSS feed (root element <{local(doc.root.tag)}>)")
    feed_title = child_text(channel, "title")
    _check_feed_error(feed_title, name)
    records = []
    for index, item in enumerate(channel.iter("item")):
        facts = _Item(
            index=index,
            title=raw_text(item, "title"),
            link=child_text(item, "link"),
            description=raw_text(item, "description"),
            identifier=child_text(item, "guid"),
            categories=children_text(item, "category"),
            date=parse_datetime(child_text(item, "pubDate")),
            creators=children_text(item, f"{{{NS_DC}}}creator"),
        )
        records.append(_from_element(item, facts, name))
    return records, feed_title or None


def parse_arxiv_atom(doc: XmlDoc, name: str) -> tuple[list[PaperRecord], str | None]:
    """Records of an arXiv Atom listing (``rss.arxiv.org/atom/…``), in feed order."""
    if doc.root.tag != f"{_A}feed":
        raise listing_error(name, f"not an Atom feed (root element <{local(doc.root.tag)}>)")
    feed_title = child_text(doc.root, f"{_A}title")
    _check_feed_error(feed_title, name)
    records = []
    for index, entry in enumerate(doc.root.iter(f"{_A}entry")):
        creators = children_text(entry, f"{{{NS_DC}}}creator") or [
            author_name(text)
            for author in entry.findall(f"{_A}author")
            if (text := child_text(author, f"{_A}name"))
        ]
        facts = _Item(
            index=index,
            title=raw_text(entry, f"{_A}title"),
            link=_alternate_link(entry),
            description=raw_text(entry, f"{_A}summary"),
            identifier=child_text(entry, f"{_A}id"),
            categories=[
                plain_text(category.get("term", "")) for category in entry.findall(f"{_A}category")
            ],
            date=parse_datetime(child_text(entry, f"{_A}published", f"{_A}updated")),
            creators=creators,
        )
        records.append(_from_element(entry, facts, name))
    return records, feed_title or None


def _from_element(element: ET.Element, facts: _Item, name: str) -> PaperRecord:
    return _record(
        facts,
        announce_type=arxiv_child(element, "announce_type"),
        doi=arxiv_child(element, "doi"),
        journal_ref=arxiv_child(element, "journal_reference", "journal_ref"),
        name=name,
    )


def _alternate_link(entry: ET.Element) -> str:
    for link in entry.findall(f"{_A}link"):
        if link.get("rel", "alternate") == "alternate":
            return link.get("href", "")
    return ""


def is_arxiv_listing(doc: XmlDoc) -> bool:
    """True for an arXiv listing feed (RSS or Atom), including an empty or error one."""
    root = doc.root
    ids = [
        *(g.text or "" for g in root.iter("guid")),
        *(i.text or "" for i in root.iter(f"{_A}id")),
    ]
    if any(text.strip().lower().startswith("oai:arxiv.org:") for text in ids):
        return True
    if root.find(f".//{{{NS_ARXIV}}}announce_type") is not None:
        return True
    channel = root.find("channel")
    title = child_text(root if channel is None else channel, "title", f"{_A}title")
    if title.lower().startswith(_ERROR_TITLE):
        return True
    # An empty weekend listing has no items: recognise it by its own address.
    links = [link.text or "" for link in root.iter("link")] + [
        link.get("href", "") for link in root.iter(f"{_A}link")
    ]
    return NS_ARXIV in doc.namespaces and any("rss.arxiv.org" in link for link in links)
