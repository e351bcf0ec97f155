"""Feeds over HTTP: bytes, media types, ETag / Last-Modified, 304s, HEAD, statuses."""

from __future__ import annotations

from email.utils import format_datetime

import pytest
from web_fixtures import (  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
    HOSTILE_TITLE,
    RUN_AT,
    SettingsFactory,
    make_app,
    seed,
    web_client,
)

from digest.render.assemble import ViewOptions
from digest.render.feed_export import subscriber_feed
from digest.render.feed_state import read_head
from digest.store import db
from digest.subscribers.library import set_status

MEDIA = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
LAST_MODIFIED = format_datetime(RUN_AT, usegmt=True)  # the digest's sent time


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_feed_bytes_headers_and_conditional_requests(
    backend: str, make_settings: SettingsFactory, fmt: str
) -> None:
    settings = make_settings(feed_max_age=600)
    ada = seed(settings)
    expected = subscriber_feed(settings, ada.email, fmt=fmt)  # what `digest feed` prints
    with db.transaction(settings) as session:
        head = read_head(session.connection(), token=ada.token, limit=settings.feed_items)
    assert head is not None
    etag = head.etag(ViewOptions.from_settings(settings), fmt)  # derived, never from the bytes
    with web_client(make_app(settings)) as client:
        first = client.get(f"/feeds/{ada.token}.{fmt}")
        again = client.get(f"/feeds/{ada.token}.{fmt}")
        assert first.status_code == 200
        assert first.content == expected == again.content  # identical bytes, stable ids
        assert first.headers["content-type"] == MEDIA[fmt]
        assert first.headers["etag"] == etag == again.headers["etag"]
        assert first.headers["last-modified"] == LAST_MODIFIED
        assert first.headers["cache-control"] == "private, max-age=600"
        assert b"2611.00001" in first.content

        def status(**headers: str) -> int:
            return client.get(f"/feeds/{ada.token}.{fmt}", headers=headers).status_code

        assert status(**{"If-None-Match": etag}) == 304
        assert status(**{"If-None-Match": f'"other", W/{etag}'}) == 304  # weak comparison
        assert status(**{"If-None-Match": "*"}) == 304
        assert status(**{"If-Modified-Since": LAST_MODIFIED}) == 304
        assert status(**{"If-Modified-Since": "Sun, 22 Nov 2026 09:00:00 GMT"}) == 200
        assert status(**{"If-Modified-Since": "not a date"}) == 200
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2), both ways round.
        assert status(**{"If-None-Match": '"stale"', "If-Modified-Since": LAST_MODIFIED}) == 200
        assert (
            status(**{"If-None-Match": etag, "If-Modified-Since": "Sun, 01 Jan 2023 00:00:00 GMT"})
            == 304
        )
        not_modified = client.get(f"/feeds/{ada.token}.{fmt}", headers={"If-None-Match": etag})
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == etag
        assert not_modified.headers["cache-control"] == "private, max-age=600"

        head = client.head(f"/feeds/{ada.token}.{fmt}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(expected))
        assert head.headers["etag"] == etag
        assert (
            client.head(f"/feeds/{ada.token}.{fmt}", headers={"If-None-Match": etag}).status_code
            == 304
        )


def test_hostile_titles_are_escaped_in_feeds(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    with web_client(make_app(settings)) as client:
        atom = client.get(f"/feeds/{ada.token}.atom").text
        rss = client.get(f"/feeds/{ada.token}.rss").text
        feed = client.get(f"/feeds/{ada.token}.json").json()
    assert "<script>" not in atom and "&lt;script&gt;" in atom
    assert "<script>" not in rss
    assert HOSTILE_TITLE in [item["title"] for item in feed["items"]]  # JSON keeps text as text


def test_unknown_pending_unsubscribed_and_paused(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    pending = seed(settings, email="pending@example.org", status="pending", deliver=False)
    with web_client(make_app(settings)) as client:
        assert client.get("/feeds/" + "A" * 32 + ".atom").status_code == 404
        assert client.get("/feeds/short.atom").status_code == 404
        assert client.get(f"/feeds/{ada.token}.xml").status_code == 404
        assert client.get(f"/feeds/{ada.token}").status_code == 404
        assert client.head("/feeds/" + "A" * 32 + ".rss").status_code == 404
        assert client.get(f"/feeds/{pending.token}.atom").status_code == 404  # never confirmed
        with db.transaction(settings) as session:
            set_status(session, ada.email, "paused", now=RUN_AT)
        assert client.get(f"/feeds/{ada.token}.atom").status_code == 200
        with db.transaction(settings) as session:
            set_status(session, ada.email, "unsubscribed", now=RUN_AT)
        gone = client.get(f"/feeds/{ada.token}.atom")
        assert gone.status_code == 410 and "unsubscribed" in gone.text


def test_public_feed_and_its_switch(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    seed(settings, deliver=False)
    with web_client(make_app(settings)) as client:
        atom = client.get("/feeds/all.atom")
        assert atom.status_code == 200
        assert atom.headers["cache-control"] == "public, max-age=900"
        assert atom.headers["content-type"] == MEDIA["atom"]
        assert atom.text.count("<entry>") == 3 and "&lt;script&gt;" in atom.text
        assert atom.headers["last-modified"] == format_datetime(RUN_AT.replace(hour=6), usegmt=True)
        assert (
            client.get(
                "/feeds/all.atom", headers={"If-None-Match": atom.headers["etag"]}
            ).status_code
            == 304
        )
        assert (
            client.get("/feeds/all.json").json()["feed_url"]
            == "https://digest.example.org/feeds/all.json"
        )
        assert client.get("/feeds/all.rss").status_code == 200
    off = make_settings(public_feed=False)
    with web_client(make_app(off)) as client:
        assert client.get("/feeds/all.atom").status_code == 404
