"""Public URLs of a subscriber's pages and feeds, all built from ``DIGEST_BASE_URL``."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

TOKEN_BYTES = 24  # 192 bits, urlsafe base64: 32 characters


@dataclass(frozen=True, slots=True)
class LinksView:
    """The subscriber's personal links, built from ``DIGEST_BASE_URL``."""

    manage_url: str
    unsubscribe_url: str  # HTTPS one-click URL (RFC 8058), carries the token
    atom_url: str
    rss_url: str
    json_url: str
    site_url: str


def new_token() -> str:
    """A fresh unguessable subscriber token (at least 128 bits, from ``secrets``)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def links_for(base_url: str, token: str) -> LinksView:
    """Every personal link of the subscriber owning ``token``."""
    base = base_url.rstrip("/")
    return LinksView(
        manage_url=f"{base}/manage/{token}",
        unsubscribe_url=f"{base}/unsubscribe/{token}",
        atom_url=f"{base}/feeds/{token}.atom",
        rss_url=f"{base}/feeds/{token}.rss",
        json_url=f"{base}/feeds/{token}.json",
        site_url=f"{base}/",
    )
