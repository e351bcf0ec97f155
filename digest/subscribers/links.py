"""Public URLs of a subscriber's pages and feeds, all built from ``DIGEST_BASE_URL``; the
signed "more like this" / "less like this" links of each paper they are sent."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

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


def token_fingerprint(token: str) -> str:
    """A short digest of a subscriber token that binds a signed link to it: a new token
    (after a leak) voids the old links without naming the token in them."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class VoteClaim:
    """What a valid feedback link says: this subscriber (and token), this paper."""

    subscriber_id: int
    fingerprint: str
    paper_key: str


class VoteSigner:
    """Signs and reads the value in ``/feedback/{signed}/up|down`` links: itsdangerous over
    (subscriber id, token fingerprint, paper key). No expiry: a digest read weeks later may
    still be rated; a changed token voids them."""

    SALT = "paper-digest.feedback"

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(
            secret, salt=self.SALT, signer_kwargs={"digest_method": hashlib.sha256}
        )

    def sign(self, subscriber_id: int, token: str, paper_key: str) -> str:
        signed = self._serializer.dumps([subscriber_id, token_fingerprint(token), paper_key])
        return str(signed)

    def read(self, signed: str) -> VoteClaim | None:
        """The claim of a genuine value; None for anything else (tampered, malformed)."""
        try:
            value = self._serializer.loads(signed)
        except (BadSignature, UnicodeDecodeError, json.JSONDecodeError):
            return None
        match value:
            case [int() as ident, str() as fingerprint, str() as key] if len(fingerprint) == 16:
                return VoteClaim(ident, fingerprint, key)
        return None


def vote_urls(base_url: str, signed: str) -> tuple[str, str]:
    """The "more like this" and "less like this" URLs of one signed (subscriber, paper)."""
    base = base_url.rstrip("/")
    return f"{base}/feedback/{signed}/up", f"{base}/feedback/{signed}/down"
