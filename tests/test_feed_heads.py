"""A feed's head and ETag: changed exactly when the bytes change, answered without a build.

Every change goes through the real library (profile edits, status changes, imports, a run
delivering to the outbox) and every answer through the real app.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from feed_support import deliver, diffusion_paper, import_papers  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
from sqlalchemy import event
from sqlmodel import Session
from web_fixtures import (  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
    BASE,
    IMPORTED,
    PAPERS,
    RUN_AT,
    SettingsFactory,
    make_app,
    seed,
    web_client,
)

from digest.config.settings import Settings
from digest.render.assemble import ViewOptions
from digest.render.feed_export import subscriber_feed
from digest.render.feed_state import FeedHead, _driver_statements, read_head
from digest.render.feed_views import BUILD_ATTEMPTS, StaleFeedError, build_view, settled_view
from digest.render.feeds import render_atom
from digest.render.views import FeedView
from digest.store import db
from digest.store.papers import upsert_records
from digest.subscribers.library import (
    PreferenceInput,
    change_preferences,
    set_status,
)
from digest.web.feed_cache import RenderedFeeds

FORMATS = ("atom", "rss", "json")


class Reader:
    """A feed reader polling one subscriber's feeds with conditional GETs."""

    def __init__(self, client: httpx.Client, token: str) -> None:
        self.client, self.token = client, token

    def get(self, fmt: str, etag: str | None = None) -> httpx.Response:
        headers = {"If-None-Match": etag} if etag else {}
        return self.client.get(f"/feeds/{self.token}.{fmt}", headers=headers)

    def state(self) -> dict[str, tuple[str, bytes, str]]:
        """ETag, bytes and Last-Modified of each format."""
        found = {}
        for fmt in FORMATS:
            response = self.get(fmt)
            assert response.status_code == 200
            etag = response.headers["etag"]
            assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # strong, derived
            found[fmt] = (etag, response.content, response.headers["last-modified"])
        return found


def edit(settings: Settings, email: str, **values: Any) -> None:
    with db.transaction(settings) as session:
        change_preferences(
            session,
            email,
            PreferenceInput.from_values(values),
            now=RUN_AT + timedelta(minutes=5),
        )


def test_etag_changes_exactly_when_the_bytes_change(
    backend: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings()
    ada = seed(settings)
    with web_client(make_app(settings)) as client:
        reader = Reader(client, ada.token)
        before = reader.state()
        assert len({etag for etag, _, _ in before.values()}) == 3  # one per format

        def unchanged(why: str) -> None:
            assert reader.state() == before, why
            for fmt, (etag, _, _) in before.items():
                assert reader.get(fmt, etag).status_code == 304, why

        def changed(why: str) -> dict[str, tuple[str, bytes, str]]:
            after = reader.state()
            for fmt in FORMATS:
                assert after[fmt][0] != before[fmt][0], why
                assert after[fmt][1] != before[fmt][1], why
                assert after[fmt][1] == subscriber_feed(settings, ada.email, fmt=fmt), why
                assert reader.get(fmt, before[fmt][0]).status_code == 200, why  # old copy
                assert reader.get(fmt, after[fmt][0]).status_code == 304, why
            return after

        # What the feed does not show changes nothing.
        edit(settings, ada.email, hour=11, weekday="friday", max_items=7)
        unchanged("schedule edited")
        with db.transaction(settings) as session:
            set_status(session, ada.email, "paused", now=RUN_AT)
        unchanged("paused")
        bob = seed(settings, email="bob@example.org", keywords=("weather",))
        unchanged("another subscriber's digest sent")
        assert bob.token != ada.token
        import_papers(settings, replace(PAPERS[2], upvotes=9))  # bob's, not ada's
        unchanged("a paper outside the feed refreshed")
        with web_client(make_app(settings)) as other_process:
            assert Reader(other_process, ada.token).state() == before, "a second app"

        # What it shows changes it.
        import_papers(settings, replace(PAPERS[0], upvotes=42), day=1)
        before = changed("a paper in the feed refreshed")
        assert b"42 upvotes" in before["atom"][1]
        edit(settings, ada.email, keywords=["diffusion", "protein design"])
        before = changed("keywords in the subtitle")
        assert b"diffusion, protein design" in before["atom"][1]
        edit(settings, ada.email, name="Ada Lovelace")
        before = changed("the name in the title")
        with db.transaction(settings) as session:
            set_status(session, ada.email, "active", now=RUN_AT)
        unchanged("resumed")
        import_papers(settings, diffusion_paper(1), day=2)
        deliver(settings, ada.email, day=2)
        before = changed("a digest sent")
        sent_at = format_datetime(RUN_AT + timedelta(days=2), usegmt=True)
        assert {last_modified for _, _, last_modified in before.values()} == {sent_at}


def test_empty_feed_is_dated_by_the_subscription_and_named_opaquely(
    make_settings: SettingsFactory,
) -> None:
    """Issue 11 item 13: no made-up 2024 date, no sequential id in the feed's id."""
    settings = make_settings()
    ada = seed(settings, deliver=False)
    bob = seed(settings, email="bob@example.org", deliver=False)
    with web_client(make_app(settings)) as client:
        atom = client.get(f"/feeds/{ada.token}.atom")
        other = client.get(f"/feeds/{bob.token}.atom").text
        rss = client.get(f"/feeds/{ada.token}.rss").text
    subscribed = IMPORTED - timedelta(days=1)  # when seed() added them, active at once
    assert atom.headers["last-modified"] == format_datetime(subscribed, usegmt=True)
    assert f"<updated>{subscribed.isoformat()}</updated>" in atom.text
    assert "2024-01-01" not in atom.text and "2024-01-01" not in rss
    feed_id = re.search(r"<feed[^>]*>\s*<id>([^<]+)</id>", atom.text)
    assert feed_id is not None
    assert re.fullmatch(r"tag:digest\.example\.org,2024:feed/[0-9a-f]{32}", feed_id.group(1))
    assert ada.token not in feed_id.group(1)
    assert feed_id.group(1).rsplit("/", 1)[1] != str(ada.subscriber_id)  # not the row id
    assert feed_id.group(1) not in other  # one per subscriber
    with web_client(make_app(settings)) as client:  # and the same every time
        assert feed_id.group(1) in client.get(f"/feeds/{ada.token}.atom").text


@pytest.fixture
def statements(make_settings: SettingsFactory) -> Iterator[tuple[Settings, list[str]]]:
    """SQLite settings and the SQL every new connection of their engine executes."""
    settings = make_settings()
    seen: list[str] = []
    engine = db.get_engine(settings)

    def trace(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.set_trace_callback(seen.append)

    event.listen(engine, "connect", trace)
    engine.dispose()  # connections made from now on are traced
    yield settings, seen
    event.remove(engine, "connect", trace)


def test_a_304_is_one_indexed_statement(statements: tuple[Settings, list[str]]) -> None:
    settings, seen = statements
    ada = seed(settings)
    for extra in range(30):  # a longer history: the window must not sort all of it
        import_papers(settings, diffusion_paper(extra), day=1 + extra)
        deliver(settings, ada.email, day=1 + extra)
    with web_client(make_app(settings)) as client:
        etag = client.get(f"/feeds/{ada.token}.atom").headers["etag"]
        seen.clear()
        response = client.get(f"/feeds/{ada.token}.atom", headers={"If-None-Match": etag})
    assert response.status_code == 304
    queries = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) == 1, seen  # the head, keywords included
    assert "FROM subscriber s" in queries[0] and "LIMIT" in queries[0]
    head_sql = "EXPLAIN QUERY PLAN " + _driver_statements("sqlite")["head_token"]
    with db.get_engine(settings).connect() as connection:
        rows = connection.exec_driver_sql(head_sql, (ada.token, 50, ada.token)).all()
    plan = " | ".join(row[3] for row in rows)
    assert "TEMP B-TREE" not in plan, plan  # no sort: the indexes give the feed order
    assert "ix_digest_feed" in plan and "ix_digest_item_feed" in plan, plan


def test_rendered_feeds_are_bounded_and_replaced_by_etag() -> None:
    cache = RenderedFeeds(max_bytes=10)
    cache.put((1, "atom"), '"a"', b"aaaa")
    cache.put((2, "atom"), '"b"', b"bbbb")
    assert cache.get((1, "atom"), '"a"') == b"aaaa"  # 1 is now the most recently used
    assert cache.get((1, "atom"), '"stale"') is None  # another version: not served
    cache.put((3, "atom"), '"c"', b"cccc")  # 12 bytes > 10: the least recently used goes
    assert cache.get((2, "atom"), '"b"') is None
    assert cache.get((1, "atom"), '"a"') == b"aaaa" and cache.size == 8
    cache.put((1, "atom"), '"a2"', b"AAAAAA")  # a new version replaces the old one
    assert cache.get((1, "atom"), '"a"') is None and cache.size == 10  # with 3
    cache.put((4, "atom"), '"d"', b"x" * 11)  # larger than the whole cache: not kept
    assert cache.get((4, "atom"), '"d"') is None


def test_public_feed_follows_new_and_refreshed_papers(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    seed(settings, deliver=False)
    with web_client(make_app(settings)) as client:
        first = client.get("/feeds/all.json")
        assert client.get("/feeds/all.json").headers["etag"] == first.headers["etag"]
        import_papers(settings, replace(PAPERS[2], upvotes=5), day=1)
        refreshed = client.get("/feeds/all.json")
        assert refreshed.headers["etag"] != first.headers["etag"]
        assert "5 upvotes" in json.dumps(refreshed.json())
        with db.transaction(settings) as session:
            upsert_records(session, [diffusion_paper(7)], source="t", now=RUN_AT)
        newer = client.get("/feeds/all.json")
        assert newer.json()["items"][0]["title"] == "Diffusion schedules, part 7"
        assert newer.headers["last-modified"] == format_datetime(RUN_AT, usegmt=True)
        assert (
            client.get("/feeds/all.json", headers={"If-None-Match": newer.headers["etag"]})
        ).status_code == 304
    assert BASE in newer.json()["feed_url"]


def test_a_build_follows_the_store_while_it_changes(make_settings: SettingsFactory) -> None:
    """A head that changes between the build and the check is read again and rebuilt; one
    that never settles is an error (the route answers 503), never bytes under a wrong ETag."""
    settings = make_settings()
    ada = seed(settings)
    options = ViewOptions.from_settings(settings)
    refreshes = iter(range(1, 100))

    def read_after_a_refresh(changes: int) -> Callable[[], FeedHead | None]:
        def read() -> FeedHead | None:
            if changes_left[0] > 0:  # an import lands while the feed is being built
                changes_left[0] -= 1
                day = next(refreshes)
                import_papers(settings, replace(PAPERS[0], upvotes=day), day=day)
            with db.get_engine(settings).connect() as connection:
                return read_head(connection, token=ada.token, limit=settings.feed_items)

        changes_left = [changes]
        return read

    def build(session: Session, head: FeedHead) -> FeedView:
        return build_view(session, head, options=options, fmt="atom")

    with Session(db.get_engine(settings)) as session:
        first = read_after_a_refresh(0)()
        assert first is not None
        settled = settled_view(session, first, read=read_after_a_refresh(2), build=build)
        assert settled is not None
        head, view = settled
        assert head.revision != first.revision  # the third attempt's head
        assert render_atom(view) == subscriber_feed(settings, ada.email, fmt="atom")
        assert b"2 upvotes" in render_atom(view)  # the last refresh
        with pytest.raises(StaleFeedError):
            settled_view(session, head, read=read_after_a_refresh(BUILD_ATTEMPTS), build=build)
