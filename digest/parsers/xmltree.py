"""Safe XML parsing for the feed formats.

Every XML listing goes through defusedxml first: entity declarations (billion laughs,
quadratic blow-up) and external references are refused, and a document that is not
well-formed is an error with its line and column. Only then do the arXiv parsers read the
tree, or feedparser (which is lenient and would otherwise accept broken documents) see it.
"""

from __future__ import annotations

import io
import pyexpat
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from digest.errors import ListingParseError
from digest.parsers.common import listing_error, plain_text

NS_ATOM = "http://www.w3.org/2005/Atom"
NS_ARXIV = "http://arxiv.org/schemas/atom"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_OPENSEARCH = "http://a9.com/-/spec/opensearch/1.1/"


class HostileXmlError(ListingParseError):
    """The XML declares entities or external references: refused, never expanded."""


@dataclass(frozen=True)
class XmlDoc:
    """A parsed document and every namespace URI it declares (for format detection)."""

    root: ET.Element
    namespaces: frozenset[str]


def parse_xml(data: bytes, name: str) -> XmlDoc:
    """Parse ``data`` with defusedxml; raise ListingParseError (line, column) when it fails."""
    namespaces: set[str] = set()
    try:
        events = SafeET.iterparse(io.BytesIO(data), events=("start-ns",))
        for _event, (_prefix, uri) in events:
            namespaces.add(uri)
        root = events.root
    except ET.ParseError as exc:
        line, column = exc.position
        reason = pyexpat.ErrorString(exc.code) if exc.code else "not well-formed XML"
        raise listing_error(name, f"malformed XML: {reason}", line=line, column=column + 1) from exc
    except DefusedXmlException as exc:
        raise listing_error(
            name,
            f"refused: XML entity declarations and external references are not allowed "
            f"({type(exc).__name__})",
        ) from exc
    except (LookupError, ValueError) as exc:
        # expat asks Python for the declared encoding: unknown (LookupError), multi-byte or
        # not a text codec (ValueError, UnicodeError). DefusedXmlException is caught above.
        raise listing_error(name, _encoding_problem(data)) from exc
    if root is None:  # iterparse ended without a root: cannot happen after a clean parse
        raise listing_error(name, "malformed XML: no root element")
    return XmlDoc(root=root, namespaces=frozenset(namespaces))


_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([^"']{0,60})""")


def _encoding_problem(data: bytes) -> str:
    found = _DECLARED_ENCODING.search(data[:1024])
    declared = found.group(1).decode("ascii", "replace") if found else "?"
    return (
        f"unsupported character encoding {declared!r} in the XML declaration "
        "(save the file as UTF-8)"
    )


def local(tag: str) -> str:
    """The local part of ``{namespace}tag``."""
    return tag.rpartition("}")[2]


def child_text(element: ET.Element, *tags: str) -> str:
    """Plain text of the first child matching one of ``tags`` (Clark notation), else ``""``."""
    for tag in tags:
        found = element.find(tag)
        if found is not None:
            return plain_text("".join(found.itertext()))
    return ""


def children_text(element: ET.Element, tag: str) -> list[str]:
    """Plain text of every child matching ``tag``, empty ones dropped."""
    texts = (plain_text("".join(found.itertext())) for found in element.findall(tag))
    return [text for text in texts if text]


def raw_text(element: ET.Element, tag: str) -> str:
    """The unmodified text of the first ``tag`` child (line breaks kept), else ``""``."""
    found = element.find(tag)
    return "".join(found.itertext()) if found is not None else ""


def arxiv_child(element: ET.Element, *names: str) -> str:
    """Text of an ``arxiv:`` child by local name, ignoring case (``DOI`` vs ``doi``)."""
    wanted = {name.lower() for name in names}
    for found in element:
        if found.tag.startswith(f"{{{NS_ARXIV}}}") and local(found.tag).lower() in wanted:
            return plain_text("".join(found.itertext()))
    return ""
