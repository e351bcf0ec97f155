"""Access logging without secrets: token path segments and query strings never reach a log.

:class:`AccessLog` is ASGI middleware that logs one line per request on the
``digest.web.access`` logger with :func:`redact_path` applied; run uvicorn with
``access_log=False`` so that this is the only access log. :class:`RedactUvicornAccess`
is a logging filter for ``uvicorn.access`` in case its access log is left on anyway.

Redaction does not trust the request to be well formed: a path that merely resembles a
token route (``/MANAGE/…``, ``//manage/…``, ``/manage//…``, ``/feeds/….atom/``) is
redacted like the route itself, and so is any run of 16 or more token characters anywhere
in a path (tokens are 32 of them; a mistyped or truncated link is still mostly a token).
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("digest.web.access")

REDACTED = "[redacted]"
# The routes whose next path segment is a secret (a token or a signed confirmation).
_TOKEN_ROUTES = frozenset({"manage", "unsubscribe", "confirm", "feeds"})
_PUBLIC_FEED = re.compile(r"all\.[a-z]{1,8}")
_FEED_SUFFIX = re.compile(r"\.[a-z]{1,8}/*$")
# As long as half a token, in the URL-safe alphabet tokens are drawn from.
_TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{16,}")


def _redact_segment(route: str, segment: str) -> str:
    if route == "feeds":
        if _PUBLIC_FEED.fullmatch(segment):
            return segment
        suffix = _FEED_SUFFIX.search(segment)
        return REDACTED + (suffix.group() if suffix else "")
    return REDACTED


def redact_path(path: str) -> str:
    """``/manage/<token>/pause?x`` → ``/manage/[redacted]/pause``; other paths unchanged.

    The segment after ``manage``, ``unsubscribe``, ``confirm`` or ``feeds`` (in any case,
    after any number of slashes) is redacted, a feed's ``.atom``/``.rss``/``.json`` kept.
    """
    path = path.split("?", 1)[0].split("#", 1)[0]
    segments = path.split("/")
    route = ""
    for index, segment in enumerate(segments):
        if route and segment:
            segments[index] = _redact_segment(route, segment)
            route = ""
        elif segment.lower() in _TOKEN_ROUTES:
            route = segment.lower()
    return _TOKEN_LIKE.sub(REDACTED, "/".join(segments))


class AccessLog:
    """ASGI middleware: ``GET /manage/[redacted] 200 3.2ms`` per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers if the app fails before responding

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                redact_path(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )


class RedactUvicornAccess(logging.Filter):
    """Rewrite the path argument of uvicorn's access records (client, method, path, …)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install_uvicorn_redaction() -> None:
    """Add :class:`RedactUvicornAccess` to ``uvicorn.access`` once (idempotent)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactUvicornAccess) for f in logger.filters):
        logger.addFilter(RedactUvicornAccess())
