"""Public URLs of a subscriber's pages and feeds, all built from ``DIGEST_BASE_URL``; the
signed "more like this" / "less like this" links of each paper they are sent."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

TOKEN_BYTES = 24  # 192 bits, urlsafe base64: 32 characters
# itsdangerous's URLSafeSerializer zlib-compresses every payload to see whether that makes it
# shorter, and a fresh zlib stream allocates ~256 KB: 20-100 µs a link, 20 links a digest.
# Below this size a stream with a 512-byte window and a 256-symbol block decides the same
# (every earlier position is in the window, the whole payload is one block), for ~4 µs; a
# "shorter" answer is checked with zlib.compress itself, so its bytes are the ones used.
_PROBE_MAX = 128


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
        # The HMAC keyed once (itsdangerous derives the key again for every value it signs).
        self._mac = hmac.new(self._serializer.make_signer().derive_key(), digestmod=hashlib.sha256)

    def sign(self, subscriber_id: int, token: str, paper_key: str) -> str:
        return self.signing_for(subscriber_id, token)(paper_key)

    def signing_for(self, subscriber_id: int, token: str) -> Callable[[str], str]:
        """Paper key -> the signed value for this subscriber: the bytes
        ``URLSafeSerializer.dumps([subscriber_id, token_fingerprint(token), paper_key])``
        gives (``tests/test_vote_links.py``), with the per-subscriber part (the token's
        fingerprint, the JSON head) and the HMAC key computed once per digest."""
        head = f"[{_json(subscriber_id)},{_json(token_fingerprint(token))},"
        mac = self._mac

        def sign(paper_key: str) -> str:
            payload = f"{head}{_json(paper_key)}]".encode()
            if len(payload) > _PROBE_MAX or _shrinks(_probe(payload), payload):
                compressed = zlib.compress(payload)
                if _shrinks(compressed, payload):
                    payload = b"." + _b64(compressed)
                else:
                    payload = _b64(payload)
            else:
                payload = _b64(payload)
            signature = mac.copy()
            signature.update(payload)
            return (payload + b"." + _b64(signature.digest())).decode("ascii")

        return sign

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


# itsdangerous's compact JSON (its _CompactJSON): no spaces, non-ASCII kept as UTF-8. One
# encoder for the process: json.dumps builds a new one per call for non-default options.
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _probe(payload: bytes) -> bytes:
    """``payload`` deflated as ``zlib.compress`` does, in a small window (see _PROBE_MAX)."""
    stream = zlib.compressobj(-1, zlib.DEFLATED, 9, 2)
    return stream.compress(payload) + stream.flush()


def _shrinks(compressed: bytes, payload: bytes) -> bool:
    return len(compressed) < len(payload) - 1  # itsdangerous's rule


@functools.lru_cache(maxsize=4)
def vote_signer(secret: str) -> VoteSigner:
    """One signer per secret key for the life of the process (renderers sign thousands)."""
    return VoteSigner(secret)


def vote_urls(base_url: str, signed: str) -> tuple[str, str]:
    """The "more like this" and "less like this" URLs of one signed (subscriber, paper)."""
    base = base_url.rstrip("/")
    return f"{base}/feedback/{signed}/up", f"{base}/feedback/{signed}/down"
