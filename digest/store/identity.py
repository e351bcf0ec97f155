"""Canonical paper identity.

A paper's key is ``arxiv:<id without version>`` when an arXiv id is known, else
``doi:<doi lower-cased>``, else ``title:<sha1 of the normalized title, 16 hex digits>``.
Two listings of the same paper, from any sources and versions, give the same key.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# New-style ids (0704.0001 … 2410.17243, 5 digits after the dot since 2015) and old-style
# ids (hep-th/9901001, math.GT/0309136). Optional version suffix.
_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7}"
ARXIV_ID_RE = re.compile(rf"(?P<id>{_NEW_ID}|{_OLD_ID})(?:v(?P<version>\d+))?", re.IGNORECASE)
_ARXIV_ANCHORED = re.compile(
    rf"^(?:arxiv:|oai:arxiv\.org:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/)?"
    rf"(?P<id>{_NEW_ID}|{_OLD_ID})(?:v(?P<version>\d+))?(?:\.pdf)?/?$",
    re.IGNORECASE,
)
_DOI_RE = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)
_VERSION_DIGITS = 4
_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w]+")


def parse_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """Return ``(bare id, version)`` for an arXiv id, URL or OAI identifier, else None.

    >>> parse_arxiv_id("oai:arXiv.org:2410.17243v2")
    ('2410.17243', 2)
    >>> parse_arxiv_id("https://arxiv.org/abs/2410.17243")
    ('2410.17243', None)
    """
    match = _ARXIV_ANCHORED.match(text.strip())
    if not match:
        return None
    version = match.group("version")
    bare = match.group("id").lower() if "/" in match.group("id") else match.group("id")
    # arXiv versions run to a few dozen; a longer number is garbage, not a version.
    return bare, int(version) if version and len(version) <= _VERSION_DIGITS else None


def normalize_doi(text: str) -> str | None:
    """Return the DOI in lower case without resolver prefix, or None if it is not a DOI."""
    match = _DOI_RE.match(text.strip())
    return match.group(1).lower().rstrip(".") if match else None


def collapse_ws(text: str) -> str:
    """Collapse runs of whitespace (hard-wrapped titles and abstracts) into single spaces."""
    return _WS.sub(" ", text).strip()


def normalize_title(title: str) -> str:
    """Fold a title for identity: NFKC, case-folded, punctuation and spacing removed."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    return _NON_WORD.sub(" ", folded).replace("_", " ").strip()


def title_hash(title: str) -> str:
    """16 hex digits of SHA-1 over the normalized title."""
    return hashlib.sha1(normalize_title(title).encode(), usedforsecurity=False).hexdigest()[:16]


def canonical_key(*, arxiv_id: str | None, doi: str | None, title: str) -> str:
    """The paper's canonical key, see the module docstring."""
    if arxiv_id:
        parsed = parse_arxiv_id(arxiv_id)
        return f"arxiv:{parsed[0] if parsed else arxiv_id.strip()}"
    if doi:
        return f"doi:{normalize_doi(doi) or doi.strip().lower()}"
    return f"title:{title_hash(title)}"
