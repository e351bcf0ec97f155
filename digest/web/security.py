"""Web security pieces: CSRF tokens, signed confirmation links, token checks, headers.

- CSRF: a signed double submit. A random cookie (``digest_csrf``, HttpOnly, SameSite=Lax)
  and, in each form, ``timestamp.HMAC(key, cookie | form action | timestamp)``; a post is
  accepted when the HMAC matches the cookie it came with and is less than a day old. Works
  without JavaScript; another site can neither read the cookie nor mint the field.
- Confirmation links: ``itsdangerous`` timestamp signatures over ``<subscriber id>-<token
  fingerprint>``; they expire after ``confirm_max_age`` and name no address or token.
- Subscriber tokens are compared with :func:`hmac.compare_digest`.
- :class:`SecurityHeaders` adds CSP, no-referrer (token URLs must not leak), nosniff,
  frame denial and ``Cache-Control: no-store`` to every response that sets none itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from hmac import compare_digest
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from itsdangerous import BadSignature, TimestampSigner
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.subscribers.links import token_fingerprint

CSRF_COOKIE = "digest_csrf"
CSRF_MAX_AGE = 24 * 3600  # a form left open for a day must be reloaded
_COOKIE_SHAPE = re.compile(r"[A-Za-z0-9_-]{22,64}")
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{22,64}")  # >= 128 bits of token_urlsafe

# No script at all; styles only from the app's own stylesheet.
PAGE_CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
# The digest preview is the email's own HTML: inline styles (as mail clients render them),
# remote images, still no script, no forms, no framing.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def tokens_equal(given: str, stored: str) -> bool:
    """Constant-time comparison of two tokens (no early exit on the first difference)."""
    return compare_digest(given.encode("utf-8"), stored.encode("utf-8"))


def plausible_token(token: str) -> bool:
    """Whether ``token`` has the shape of a subscriber token (checked before any lookup)."""
    return _TOKEN_SHAPE.fullmatch(token) is not None


# CSRF -------------------------------------------------------------------------------------


class Csrf:
    """Signed double-submit CSRF tokens bound to a cookie and to the form's action path."""

    def __init__(self, secret: str, *, secure_cookie: bool) -> None:
        self._key = hashlib.sha256(b"paper-digest.csrf\0" + secret.encode("utf-8")).digest()
        self.secure_cookie = secure_cookie

    def cookie_of(self, request: Request) -> tuple[str, bool]:
        """The request's CSRF cookie, or a fresh value (second item: needs to be set)."""
        value = request.cookies.get(CSRF_COOKIE, "")
        if _COOKIE_SHAPE.fullmatch(value):
            return value, False
        return secrets.token_urlsafe(16), True

    def _mac(self, cookie: str, action: str, stamp: str) -> str:
        mac = hmac.new(self._key, f"{cookie}\0{action}\0{stamp}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode("ascii").rstrip("=")

    def token(self, cookie: str, action: str, now: datetime) -> str:
        """The hidden field value for a form posting to ``action`` (an app path)."""
        stamp = str(int(now.timestamp()))
        return f"{stamp}.{self._mac(cookie, action, stamp)}"

    def verify(self, request: Request, token: str, action: str, now: datetime) -> None:
        """Raise HTTP 403 unless ``token`` was issued for this cookie and action, recently."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        stamp, _, mac = token.partition(".")
        fresh = stamp.isdigit() and -60 <= now.timestamp() - int(stamp) <= CSRF_MAX_AGE
        expected = self._mac(cookie, action, stamp) if stamp.isdigit() else ""
        valid = bool(cookie) and compare_digest(mac.encode(), expected.encode())
        if not (valid and fresh):
            raise HTTPException(
                status_code=403,
                detail="This form has expired or your browser did not send its cookie. "
                "Reload the page and try again.",
            )

    def set_cookie(self, response: Response, value: str) -> None:
        response.set_cookie(
            CSRF_COOKIE,
            value,
            httponly=True,
            samesite="lax",  # sent on same-site posts, never on another site's form post
            secure=self.secure_cookie,
            path="/",
        )


# Confirmation links -----------------------------------------------------------------------


class _FixedTimeSigner(TimestampSigner):
    """A TimestampSigner whose "now" is given, so expiry follows the app's clock."""

    def __init__(self, *args: Any, now: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._now = now

    def get_timestamp(self) -> int:
        return self._now


@dataclass(frozen=True, slots=True)
class ConfirmClaim:
    """What a valid confirmation link says: this subscriber, with this token fingerprint."""

    subscriber_id: int
    fingerprint: str


class ConfirmSigner:
    """Signs and checks the expiring ``/confirm/{signed}`` values."""

    SALT = "paper-digest.confirm"

    def __init__(self, secret: str, *, max_age: int) -> None:
        self._secret = secret
        self.max_age = max_age

    def _signer(self, now: datetime) -> _FixedTimeSigner:
        return _FixedTimeSigner(
            self._secret, salt=self.SALT, digest_method=hashlib.sha256, now=int(now.timestamp())
        )

    def sign(self, subscriber_id: int, token: str, now: datetime) -> str:
        value = f"{subscriber_id}-{token_fingerprint(token)}"
        return self._signer(now).sign(value).decode("ascii")

    def read(self, signed: str, now: datetime) -> ConfirmClaim | None:
        """The claim of a valid, unexpired value; None for anything else."""
        try:
            value = self._signer(now).unsign(signed, max_age=self.max_age).decode("ascii")
        except (BadSignature, UnicodeDecodeError):  # SignatureExpired is a BadSignature
            return None
        ident, _, fingerprint = value.partition("-")
        if not ident.isdigit() or len(fingerprint) != 16:
            return None
        return ConfirmClaim(int(ident), fingerprint)


# Security headers -------------------------------------------------------------------------


def default_headers(*, hsts: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": PAGE_CSP,
        "Referrer-Policy": "no-referrer",  # token URLs never leak to the sites linked
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        # Pages carry tokens and per-visitor CSRF fields: no cache may keep them. Feeds and
        # the stylesheet set their own Cache-Control.
        "Cache-Control": "no-store",
    }
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


class SecurityHeaders:
    """ASGI middleware: add the default headers a response did not set itself."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = default_headers(hsts=hsts)
        # Encoded once: every response (a feed's 304 included) pays only a set lookup each.
        self._raw = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in self.headers.items()
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(pair for pair in self._raw if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
