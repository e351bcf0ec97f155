"""Access logging without secrets: token path segments and query strings never reach a log.

:class:`AccessLog` is ASGI middleware that logs one line per request on the
``digest.web.access`` logger with :func:`redact_path` applied; run uvicorn with
``access_log=False`` so that this is the only access log. :class:`RedactUvicornAccess`
is a logging filter for ``uvicorn.access`` in case its access log is left on anyway.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("digest.web.access")

REDACTED = "[redacted]"
_TOKEN_SEGMENT = re.compile(r"^/(manage|unsubscribe|confirm)/[^/]+")
_FEED_SEGMENT = re.compile(r"^/feeds/(?!all\.)[^/]+?(?=\.[a-z]+$|$)")


def redact_path(path: str) -> str:
    """``/manage/<token>/pause?x`` → ``/manage/[redacted]/pause``; other paths unchanged."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    path = _TOKEN_SEGMENT.sub(lambda m: f"/{m.group(1)}/{REDACTED}", path)
    return _FEED_SEGMENT.sub(f"/feeds/{REDACTED}", path)


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
