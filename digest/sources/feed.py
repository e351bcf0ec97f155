"""Any RSS or Atom feed (journals, blogs, preprint servers), read with feedparser.

Fetched with a conditional GET: the ETag and Last-Modified of the last stored response go
out as ``If-None-Match`` / ``If-Modified-Since``; a 304 stores nothing and costs nothing.
The validators are saved in the same transaction as the papers, so a failed store never
leaves a validator that would hide the feed's content next time.
"""

from __future__ import annotations

from collections.abc import Iterator

from digest.config.sources import SourceSpec
from digest.errors import SourceFetchError
from digest.parsers import parse_listing
from digest.sources.base import Batch, Cursor, FetchContext
from digest.sources.http import Fetched


def conditional_headers(cursor: Cursor) -> dict[str, str]:
    """``If-None-Match`` / ``If-Modified-Since`` from the stored validators."""
    headers = {}
    if cursor.etag:
        headers["If-None-Match"] = cursor.etag
    if cursor.last_modified:
        headers["If-Modified-Since"] = cursor.last_modified
    return headers


def validators(fetched: Fetched, cursor: Cursor) -> Cursor:
    """The cursor with this response's validators (a response without them clears them)."""
    etag = fetched.headers.get("etag")
    modified = fetched.headers.get("last-modified")
    return Cursor(
        last_date=cursor.last_date,
        etag=etag if etag and len(etag) <= 500 else None,
        last_modified=modified if modified and len(modified) <= 100 else None,
    )


class Feed:
    """The ``feed`` source."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec

    def fetch(self, ctx: FetchContext, cursor: Cursor) -> Iterator[Batch]:
        url = self.spec.resolved_url
        fetched = ctx.http.get(url, headers={} if ctx.probe else conditional_headers(cursor))
        if fetched.status == 304:
            yield Batch(label="not modified since the last fetch")
            return
        if fetched.status != 200:
            raise SourceFetchError(
                f"{fetched.url}: HTTP {fetched.status}: {fetched.text_excerpt() or 'no body'}"
            )
        listing = parse_listing(fetched.body, fmt="feed", name=fetched.url, now=ctx.now)
        yield Batch(
            label=f"{len(listing.records)} entries",
            records=listing.records,
            cursor=validators(fetched, cursor),
        )
