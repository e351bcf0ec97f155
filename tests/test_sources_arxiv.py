"""arxiv sources against a local server: announce types, errors, spacing, enrichment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import pairwise

import pytest
from sources_support import (
    DATA,
    NOW,
    count_papers,
    fast,
    fetch_runs,
    paper,
    paper_keys,
    state,
)

from digest.config.settings import Settings
from digest.sources.fetcher import fetch_all
from digest.store import db
from digest.store.papers import upsert_records
from digest.store.records import PaperRecord
from digest.testing.http import HttpTestServer, Reply, static
from digest.testing.imitations import ArxivApi, ArxivItem, ArxivListings


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as running:
        yield running


def arxiv_settings(
    make_settings: Callable[..., Settings],
    server: HttpTestServer,
    *,
    base: str = "/rss",
    categories: str = "cs.LG",
    **options: object,
) -> Settings:
    source = {"name": "arxiv", "kind": "arxiv", "url": server.url(base), "categories": categories}
    settings_overrides = {k: options.pop(k) for k in list(options) if k in {"arxiv_delay"}}
    source.update(options)  # type: ignore[arg-type]  # a deliberately loose test input
    return fast(make_settings, sources=[source], **settings_overrides)


def store_old_version(settings: Settings) -> None:
    """2302.04555 as first stored elsewhere, in version 1."""
    record = PaperRecord(title="Graph Neural Networks", arxiv_id="2302.04555", version=1)
    with db.transaction(settings) as session:
        upsert_records(session, [record], source="import", now=NOW.replace(month=1))


@pytest.mark.parametrize("cross", [False, True])
def test_new_announces_replace_only_updates_the_stored_version(
    backend: str, make_settings: Callable[..., Settings], server: HttpTestServer, cross: bool
) -> None:
    server.route("/rss/cs.LG", Reply(200, (DATA / "arxiv" / "cs.LG.rss.xml").read_bytes()))
    settings = arxiv_settings(make_settings, server, cross=cross)
    store_old_version(settings)

    report = fetch_all(settings, now=NOW)

    (source,) = report.sources
    assert source.status == "ok"
    expected_new = ["arxiv:2410.17243", *(["arxiv:2410.18001"] if cross else [])]
    assert source.new == len(expected_new)
    assert source.skipped == (1 if cross else 2)  # replacements of papers we never had
    assert sorted(paper_keys(settings)) == sorted(["arxiv:2302.04555", *expected_new])
    replaced = paper(settings, "arxiv:2302.04555")
    assert replaced.version == 3 and replaced.first_seen_at == NOW.replace(month=1)

    again = fetch_all(settings, now=NOW)
    assert again.new == 0 and count_papers(settings) == len(expected_new) + 1


def test_atom_listing(make_settings: Callable[..., Settings], server: HttpTestServer) -> None:
    server.route("/atom/cs.LG", Reply(200, (DATA / "arxiv" / "cs.LG.atom.xml").read_bytes()))
    settings = arxiv_settings(make_settings, server, base="/atom", cross=True)
    report = fetch_all(settings, now=NOW)
    assert report.failed == [] and report.new == 2  # new + cross; the replacement is unknown
    assert server.requests[0].path == "/atom/cs.LG"


def test_unknown_category_is_a_configuration_error_on_its_run(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    server.route("/rss/", ArxivListings({"cs.LG": [ArxivItem("2410.00001", "A paper")]}))
    settings = arxiv_settings(make_settings, server, categories="cs.LG,cs.XX")

    (failed,) = fetch_all(settings, now=NOW).failed

    assert failed.error_kind == "config"
    assert "Feed error for query: cs.LG+cs.XX" in (failed.error or "")
    assert "check the categories of source 'arxiv'" in (failed.error or "")
    assert len(server.requests) == 1  # a 400 is not retried
    assert count_papers(settings) == 0
    (run,) = fetch_runs(settings)
    assert run.status == "error" and run.details["error_kind"] == "config"


def test_error_feed_served_with_200_is_a_configuration_error_too(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    server.route("/rss/cs.LG", Reply(200, (DATA / "arxiv" / "feed_error.rss.xml").read_bytes()))
    (failed,) = fetch_all(arxiv_settings(make_settings, server), now=NOW).failed
    assert failed.error_kind == "config" and "cs.XX" in (failed.error or "")


def test_categories_are_joined_and_shared_papers_stored_once(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    shared = ArxivItem("2410.00003", "Shared paper", categories=("cs.LG", "cs.AI"))
    server.route(
        "/rss/",
        ArxivListings(
            {
                "cs.LG": [ArxivItem("2410.00001", "Only LG"), shared],
                "cs.AI": [shared, ArxivItem("2410.00002", "Only AI", categories=("cs.AI",))],
            }
        ),
    )
    settings = arxiv_settings(make_settings, server, categories="cs.LG,cs.AI")
    assert fetch_all(settings, now=NOW).new == 3
    assert server.requests[0].path == "/rss/cs.LG+cs.AI"


def test_weekend_listing_is_quiet(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    server.route("/rss/cs.LG", Reply(200, (DATA / "arxiv" / "weekend.rss.xml").read_bytes()))
    report = fetch_all(arxiv_settings(make_settings, server), now=NOW)
    assert report.failed == [] and report.new == 0


def test_malformed_xml_stores_nothing_and_says_where(
    backend: str, make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    whole = (DATA / "arxiv" / "cs.LG.rss.xml").read_bytes()
    server.route("/rss/cs.LG", Reply(200, whole[: len(whole) * 2 // 3]))
    settings = arxiv_settings(make_settings, server)

    (failed,) = fetch_all(settings, now=NOW).failed

    assert failed.error_kind == "fetch" and "line " in (failed.error or "")
    assert "\n" not in (failed.error or "")
    assert count_papers(settings) == 0


def test_conditional_get_uses_the_stored_etag(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    body = (DATA / "arxiv" / "cs.LG.rss.xml").read_bytes()
    server.route("/rss/cs.LG", static(body, etag='"day-1"'))
    settings = arxiv_settings(make_settings, server)
    assert fetch_all(settings, now=NOW).new == 1
    saved = state(settings, "arxiv")
    assert saved is not None and saved.etag == '"day-1"'

    again = fetch_all(settings, now=NOW)
    assert again.sources[0].batches == ["not modified since the last fetch"]
    assert server.requests[-1].headers["if-none-match"] == '"day-1"'


def test_enrichment_spacing_and_short_api_pages(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    listed = [ArxivItem(f"2410.0000{n}", f"Paper {n}") for n in range(1, 4)]
    in_api = [
        ArxivItem(
            item.arxiv_id,
            item.title,
            authors=("Ada Lovelace", "Charles Babbage"),
            doi=f"10.1000/x{n}",
            journal_ref="J. Imaginary Res. 1 (2024)",
        )
        for n, item in enumerate(listed)
    ]
    server.route("/rss/", ArxivListings({"cs.LG": listed}))
    server.route("/api/query", ArxivApi(in_api, short=1))
    settings = arxiv_settings(
        make_settings, server, enrich=True, api_url=server.url("/api/query"), arxiv_delay=0.15
    )

    report = fetch_all(settings, now=NOW)

    assert report.failed == [] and report.new == 3
    assert [r.path for r in server.requests] == ["/rss/cs.LG", "/api/query", "/api/query"]
    assert server.requests[1].query["id_list"] == "2410.00001,2410.00002,2410.00003"
    arrivals = [r.at for r in server.requests]
    assert all(b - a >= 0.15 for a, b in pairwise(arrivals))  # one request per interval
    enriched = paper(settings, "arxiv:2410.00003")
    assert enriched.doi == "10.1000/x2"
    assert enriched.authors == ["Ada Lovelace"]  # the listing's own facts win
    assert report.sources[0].notes["enrich_missing"] == 0


def test_enrichment_failure_keeps_the_listing(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    server.route("/rss/", ArxivListings({"cs.LG": [ArxivItem("2410.00001", "Paper")]}))
    server.route("/api/query", Reply(500))
    settings = arxiv_settings(make_settings, server, enrich=True, api_url=server.url("/api/query"))
    report = fetch_all(settings, now=NOW)
    assert report.failed == [] and report.new == 1
    (run,) = fetch_runs(settings)
    assert "HTTP 500" in run.details["enrich_error"]
