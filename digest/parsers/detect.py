"""Format detection by content (the extension is only a name in messages).

Detection parses what it must (JSON, XML) and hands the result on, so ``fmt="auto"`` costs
one parse, not two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from digest.errors import ListingError, ListingFormatError
from digest.parsers.arxiv import is_arxiv_listing
from digest.parsers.arxiv_api import is_arxiv_api
from digest.parsers.common import listing_error
from digest.parsers.hf_json import is_hf_json, load_json
from digest.parsers.hf_page import looks_like_page
from digest.parsers.xmltree import NS_ATOM, HostileXmlError, XmlDoc, local, parse_xml

_FEED_ROOTS = frozenset({"rss", "feed", "RDF"})
# The opening of a feed, for documents too broken to parse (so the parse error is reported).
_FEED_HEAD = re.compile(rb"<(?:[\w.-]+:)?(?:rss|feed|RDF)[\s>]", re.IGNORECASE)
_XML_START = (b"<?xml", b"<!--", b"<!DOCTYPE", b"<rss", b"<feed", b"<rdf:RDF")


@dataclass(frozen=True)
class Sniffed:
    """A detected format and, when detection had to parse, the parsed payload."""

    fmt: str
    payload: object = None  # decoded JSON value or XmlDoc; None means "parse it yourself"


def _undetectable(name: str, why: str) -> ListingError:
    return listing_error(
        name,
        f"cannot detect the listing format ({why}); expected Hugging Face JSON, an arXiv or "
        "RSS/Atom feed, or a saved Hugging Face page",
        cls=ListingFormatError,
    )


def _xml_format(doc: XmlDoc) -> str | None:
    root_name = local(doc.root.tag)
    if root_name not in _FEED_ROOTS:
        return None
    if is_arxiv_listing(doc):
        return "arxiv-rss" if root_name == "rss" else "arxiv-atom"
    if doc.root.tag == f"{{{NS_ATOM}}}feed" and is_arxiv_api(doc):
        return "arxiv-api"
    return "feed"


def sniff(data: bytes, name: str) -> Sniffed:
    """Detect the format of ``data``; raise ListingFormatError when it is none of ours."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise _undetectable(name, "the file is empty")
    if head[:1] in (b"[", b"{"):
        try:
            value = load_json(data, name)
        except ListingError:
            return Sniffed("hf-json")  # JSON, but broken: the parse reports where
        if is_hf_json(value):
            return Sniffed("hf-json", value)
        raise _undetectable(name, "JSON of an unknown shape")
    if head.startswith(_XML_START) or _FEED_HEAD.search(head):
        try:
            doc = parse_xml(data, name)
        except HostileXmlError:
            raise  # refused whatever it claims to be
        except ListingError as exc:
            if _FEED_HEAD.search(head):
                return Sniffed("feed")  # a broken feed: the parse reports line and column
            raise _undetectable(name, "XML that is not a feed") from exc
        fmt = _xml_format(doc)
        if fmt is None:
            raise _undetectable(name, f"XML with root element <{local(doc.root.tag)}>")
        return Sniffed(fmt, doc)
    # Only the opening matters here; "ignore" because the cut may split a character.
    if looks_like_page(data[:65536].decode("utf-8-sig", errors="ignore")):
        return Sniffed("hf-page")
    raise _undetectable(name, "not JSON, XML or a saved page")
