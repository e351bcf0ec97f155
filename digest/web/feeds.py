"""Feeds over HTTP: ``/feeds/{token}.atom|.rss|.json`` and the public ``/feeds/all.*``.

The bytes come from the deterministic renderers, so the strong ETag (a hash of the bytes) is
stable while the items are. ``If-None-Match`` wins over ``If-Modified-Since`` (RFC 9110
§13.2.2). Personal feeds are ``Cache-Control: private``: their URL is a secret, so shared
caches (proxies, CDNs) should not keep copies of them; the public feed is ``public``.

Statuses: unknown or pending token → 404; unsubscribed → 410 Gone (feed readers drop a
gone feed, the same wish as unsubscribing); active and paused subscribers keep their feed
of what was delivered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from digest.render.assemble import feed_view, public_feed_view
from digest.render.display import as_utc
from digest.render.feeds import FEED_FORMATS
from digest.web.deps import DbSession, Web
from digest.web.service import subscriber_for_token

router = APIRouter()

MEDIA_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
PUBLIC_FEED = "all"


def entity_tag(data: bytes) -> str:
    """A strong ETag derived from the bytes."""
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


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


def feed_response(
    request: Request, data: bytes, *, fmt: str, updated: datetime, cache_control: str
) -> Response:
    """200 with the feed, or 304 when the client's copy is current."""
    etag = entity_tag(data)
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(as_utc(updated).astimezone(UTC), usegmt=True),
        "Cache-Control": cache_control,
    }
    if not_modified(request.headers, etag=etag, updated=updated):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.api_route("/feeds/{name}.{fmt}", methods=["GET", "HEAD"], name="feed")
def feed(name: str, fmt: str, request: Request, web: Web, session: DbSession) -> Response:
    """A personal feed by token, or the public feed of every new paper."""
    if fmt not in MEDIA_TYPES:
        raise HTTPException(404)
    settings = web.settings
    if name == PUBLIC_FEED:
        if not settings.public_feed:
            raise HTTPException(404)
        view = public_feed_view(session, options=web.views, fmt=fmt)
        cache_control = f"public, max-age={settings.feed_max_age}"
    else:
        subscriber = subscriber_for_token(session, name)
        if subscriber is None:
            raise HTTPException(404)
        if subscriber.status == "unsubscribed":
            raise HTTPException(410, detail="This feed ended when its owner unsubscribed.")
        view = feed_view(session, subscriber, options=web.views, fmt=fmt)
        cache_control = f"private, max-age={settings.feed_max_age}"
    data = FEED_FORMATS[fmt](view)
    return feed_response(request, data, fmt=fmt, updated=view.updated, cache_control=cache_control)
