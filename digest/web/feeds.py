"""Feeds over HTTP: ``/feeds/{token}.atom|.rss|.json`` and the public ``/feeds/all.*``.

A conditional GET is answered from the feed's head alone (:mod:`digest.render.feed_state`):
one indexed statement, no feed built. The strong ETag is derived from everything the bytes
depend on, so it changes exactly when they do; ``Last-Modified`` is the newest delivery (or
when the subscriber subscribed). A full GET takes the bytes from the process's cache of
rendered feeds (:mod:`digest.web.feed_cache`) when their ETag is current, else builds them.
``If-None-Match`` wins over ``If-Modified-Since`` (RFC 9110 §13.2.2). Personal feeds are
``Cache-Control: private``: their URL is a secret, so shared caches (proxies, CDNs) should not
keep copies of them; the public feed is ``public``.

The route is a plain Starlette route placed before the app's routers (:data:`route`): the
hottest path of the app skips FastAPI's parameter solving and the scan of every other route.
On SQLite the head is read on the event loop (a ~0.1 ms in-process read is cheaper than a hop
to the thread pool); on PostgreSQL, and for every build, in the thread pool.

Statuses: unknown or pending token → 404; unsubscribed → 410 Gone (feed readers drop a
gone feed, the same wish as unsubscribing); active and paused subscribers keep their feed
of what was delivered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import TypeVar

from fastapi import HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.routing import Route

from digest.render.display import as_utc
from digest.render.feed_state import FeedHead, PublicHead
from digest.render.feed_views import StaleFeedError
from digest.web.deps import WebContext
from digest.web.feed_cache import FeedService
from digest.web.security import plausible_token, tokens_equal

MEDIA_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
PUBLIC_FEED = "all"
T = TypeVar("T")


def not_modified(headers: Mapping[str, str], *, etag: str, updated: datetime) -> bool:
    """Whether a conditional GET/HEAD can be answered 304."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:  # present: it alone decides (RFC 9110 §13.2.2)
        tags = (tag.strip() for tag in if_none_match.split(","))
        return any(tag == "*" or tag.removeprefix("W/") == etag for tag in tags)  # weak compare
    if_modified_since = headers.get("if-modified-since")
    if not if_modified_since:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an invalid date is ignored (RFC 9110 §13.1.3)
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    return as_utc(updated).replace(microsecond=0) <= since


def _headers(etag: str, updated: datetime, cache_control: str) -> dict[str, str]:
    return {
        "ETag": etag,
        "Last-Modified": format_datetime(as_utc(updated).astimezone(UTC), usegmt=True),
        "Cache-Control": cache_control,
    }


async def _read(feeds: FeedService, read: Callable[..., T], *args: str) -> T:
    if feeds.reads_inline:
        return read(*args)
    return await run_in_threadpool(read, *args)


def _served(head: FeedHead) -> FeedHead:
    """The head, when its feed is served; else 404 (pending) or 410 (unsubscribed)."""
    if head.status == "pending":
        raise HTTPException(404)
    if head.status == "unsubscribed":
        raise HTTPException(410, detail="This feed ended when its owner unsubscribed.")
    return head


def _personal(head: FeedHead | None, token: str) -> FeedHead:
    """The head, when ``token`` may see this feed; else 404 or 410."""
    # The index lookup found the row; the final check is constant-time (see README).
    if head is None or not tokens_equal(token, head.token):
        raise HTTPException(404)
    return _served(head)


async def feed(request: Request) -> Response:
    """A personal feed by token, or the public feed of every new paper."""
    name, fmt = request.path_params["name"], request.path_params["fmt"]
    web: WebContext = request.app.state.web
    if fmt not in MEDIA_TYPES:
        raise HTTPException(404)
    feeds = web.feeds
    options = feeds.options
    head: FeedHead | PublicHead
    if name == PUBLIC_FEED:
        if not web.settings.public_feed:
            raise HTTPException(404)
        cache_control = f"public, max-age={web.settings.feed_max_age}"
        head = await _read(feeds, feeds.public_head)
    else:
        if not plausible_token(name):
            raise HTTPException(404)
        cache_control = f"private, max-age={web.settings.feed_max_age}"
        head = _personal(await _read(feeds, feeds.head, name), name)
    etag = head.etag(options, fmt)
    if not_modified(request.headers, etag=etag, updated=head.updated):
        return Response(status_code=304, headers=_headers(etag, head.updated, cache_control))
    data = feeds.rendered.get((feeds.key(head), fmt), etag)
    if data is None:  # build it, in the thread pool
        try:
            if isinstance(head, PublicHead):
                head, data = await run_in_threadpool(feeds.public_bytes, head, fmt)
            else:
                found = await run_in_threadpool(feeds.feed_bytes, head, fmt)
                if found is None:  # removed while the feed was built
                    raise HTTPException(404)
                head, data = _served(found[0]), found[1]  # its status may have moved meanwhile
        except StaleFeedError:  # changed under every attempt: a run is sending right now
            raise HTTPException(503, headers={"Retry-After": "5"}) from None
    headers = _headers(head.etag(options, fmt), head.updated, cache_control)
    return Response(data, media_type=MEDIA_TYPES[fmt], headers=headers)


route = Route("/feeds/{name}.{fmt}", feed, methods=["GET", "HEAD"], name="feed")
