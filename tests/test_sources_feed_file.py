"""feed and file sources, and `sources test` probing, against a real local server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sources_support import DATA, NOW, count_papers, fast, fetch_runs, state

from digest.config.settings import Settings
from digest.errors import ConfigError, SourceFetchError
from digest.sources.fetcher import fetch_all
from digest.sources.probe import probe_source
from digest.testing.http import HttpTestServer, Reply, static
from digest.testing.imitations import HF_PATH, HfDailyPapersApi

JOURNAL = (DATA / "feeds" / "journal.rss.xml").read_bytes()
MODIFIED = "Thu, 24 Oct 2024 10:00:00 GMT"


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as running:
        yield running


def feed_settings(make_settings: Callable[..., Settings], url: str) -> Settings:
    return fast(make_settings, sources=[{"name": "journal", "kind": "feed", "url": url}])


def test_feed_conditional_get_with_etag_and_last_modified(
    backend: str, make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    server.route("/feed.xml", static(JOURNAL, etag='"v1"', last_modified=MODIFIED))
    settings = feed_settings(make_settings, server.url("/feed.xml"))

    assert fetch_all(settings, now=NOW).new == 3
    saved = state(settings, "journal")
    assert saved is not None and (saved.etag, saved.last_modified) == ('"v1"', MODIFIED)

    again = fetch_all(settings, now=NOW)
    assert (again.new, again.seen, again.failed) == (0, 0, [])
    sent = server.requests[-1].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == ('"v1"', MODIFIED)
    assert fetch_runs(settings)[-1].details["batches"] == ["not modified since the last fetch"]

    server.route("/feed.xml", static(JOURNAL, etag='"v2"'))  # changed upstream
    third = fetch_all(settings, now=NOW)
    assert (third.new, third.seen) == (0, 3)
    assert state(settings, "journal").etag == '"v2"'  # type: ignore[union-attr]  # present here, or the test fails on None
    assert count_papers(settings) == 3


def test_malformed_feed_stores_nothing_and_keeps_the_old_validators(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    server.route("/feed.xml", static(JOURNAL, etag='"v1"'))
    settings = feed_settings(make_settings, server.url("/feed.xml"))
    fetch_all(settings, now=NOW)
    server.route("/feed.xml", Reply(200, JOURNAL[:700], {"ETag": '"v2"'}))

    (failed,) = fetch_all(settings, now=NOW).failed

    assert failed.error and "\n" not in failed.error
    assert state(settings, "journal").etag == '"v1"'  # type: ignore[union-attr]  # present here, or the test fails on None
    assert count_papers(settings) == 3


def test_feed_http_error_is_reported(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    settings = feed_settings(make_settings, server.url("/gone.xml"))
    (failed,) = fetch_all(settings, now=NOW).failed
    assert "HTTP 404" in (failed.error or "")


def test_file_source_plain_path_and_file_url(make_settings: Callable[..., Settings]) -> None:
    listing = DATA / "hf" / "2024-10-24.json"
    settings = fast(
        make_settings,
        sources=[
            {"name": "drop", "kind": "file", "url": str(listing)},
            {"name": "again", "kind": "file", "url": listing.as_uri(), "format": "hf-json"},
            {"name": "missing", "kind": "file", "url": "nowhere/listing.json"},
        ],
    )
    report = fetch_all(settings, now=NOW)
    assert [(s.name, s.new, s.seen, s.status) for s in report.sources] == [
        ("drop", 3, 0, "ok"),
        ("again", 0, 3, "ok"),
        ("missing", 0, 0, "error"),
    ]
    assert "nowhere/listing.json: cannot read" in (report.sources[2].error or "")


def test_probe_stores_nothing(
    make_settings: Callable[..., Settings], server: HttpTestServer, tmp_path: Path
) -> None:
    api = HfDailyPapersApi(today=NOW.date())
    api.add(NOW.date(), *[{"paper": {"id": f"2410.0000{n}", "title": f"T{n}"}} for n in range(3)])
    server.route(HF_PATH, api)
    settings = fast(
        make_settings,
        sources=[{"name": "hf", "kind": "hf_daily", "url": server.url(HF_PATH)}],
    )
    report = probe_source(settings, "hf", now=NOW)
    assert (report.papers, report.titles) == (3, ["T0", "T1", "T2"])
    assert report.label.startswith(f"{NOW.date()}: 3 papers")
    assert [r.query["date"] for r in server.requests] == [str(NOW.date())]
    assert count_papers(settings) == 0 and fetch_runs(settings) == []
    with pytest.raises(ConfigError, match="unknown source 'nope'"):
        probe_source(settings, "nope", now=NOW)


def test_probe_raises_the_sources_failure(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    server.route(HF_PATH, Reply(503))
    settings = fast(
        make_settings,
        http_retries=0,
        sources=[{"name": "hf", "kind": "hf_daily", "url": server.url(HF_PATH)}],
    )
    with pytest.raises(SourceFetchError, match="HTTP 503"):
        probe_source(settings, "hf", now=NOW)
