"""hf_daily against a local imitation of the Hugging Face API: every paper exactly once."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sources_support import (
    DATA,
    NOW,
    TODAY,
    count_papers,
    count_sightings,
    day,
    fast,
    fetch_runs,
    hf_papers,
    paper,
    paper_keys,
    state,
)

from digest.config.settings import Settings
from digest.config.sources import SourceSpec
from digest.sources.base import Cursor
from digest.sources.fetcher import SOURCE_TYPES, fetch_all, make_context
from digest.sources.hf_daily import HfDaily
from digest.testing.http import HttpTestServer, Reply, Request
from digest.testing.imitations import HF_PATH, HfDailyPapersApi


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as running:
        yield running


@pytest.fixture
def hf(server: HttpTestServer) -> HfDailyPapersApi:
    api = HfDailyPapersApi(today=TODAY)
    server.route(HF_PATH, api)
    return api


def hf_settings(
    make_settings: Callable[..., Settings], server: HttpTestServer, **overrides: object
) -> Settings:
    source = {"name": "hf", "kind": "hf_daily", "url": server.url(HF_PATH), "lookback_days": 3}
    source.update(overrides.pop("source", {}))  # type: ignore[arg-type]  # a deliberately loose test input
    return fast(make_settings, sources=[source], **overrides)


def hf_requests(server: HttpTestServer) -> list[tuple[str, str]]:
    return [(r.query["date"], r.query.get("p", "0")) for r in server.requests_to(HF_PATH)]


def test_pagination_lookback_and_resume_store_every_paper_once(
    backend: str,
    make_settings: Callable[..., Settings],
    server: HttpTestServer,
    hf: HfDailyPapersApi,
) -> None:
    hf.add(day(-3), *hf_papers("2410.1", 20))  # Tuesday
    hf.add(day(-1), *hf_papers("2410.2", 230))  # Thursday: three pages
    hf.add(day(0), *hf_papers("2410.3", 7))  # today, so far
    settings = hf_settings(make_settings, server)

    report = fetch_all(settings, now=NOW)

    assert (report.new, report.seen, report.failed) == (257, 0, [])
    assert count_papers(settings) == 257
    assert hf_requests(server) == [
        (str(day(-3)), "0"),
        (str(day(-2)), "0"),  # a quiet day
        (str(day(-1)), "0"),
        (str(day(-1)), "1"),
        (str(day(-1)), "2"),
        (str(day(0)), "0"),
    ]
    assert all(r.query["limit"] == "100" for r in server.requests_to(HF_PATH))
    saved = state(settings, "hf")
    assert saved is not None and saved.last_date == day(-1)  # today is not complete
    (run,) = fetch_runs(settings)
    assert (run.status, run.new_count, run.seen_count, run.error) == ("ok", 257, 0, None)
    assert run.started_at == NOW and run.finished_at is not None and run.finished_at >= NOW

    server.requests.clear()
    again = fetch_all(settings, now=NOW)
    assert (again.new, again.seen) == (0, 7)  # only today is pulled again
    assert hf_requests(server) == [(str(day(0)), "0")]
    assert count_papers(settings) == 257


def test_pages_by_p_without_link_header_until_empty(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    api = HfDailyPapersApi(today=TODAY, links=False)
    api.add(day(0), *hf_papers("2410.4", 200))  # exactly two full pages, then []
    server.route(HF_PATH, api)
    settings = hf_settings(make_settings, server, source={"lookback_days": 0})
    report = fetch_all(settings, now=NOW)
    assert report.new == 200 and count_papers(settings) == 200
    assert hf_requests(server) == [(str(TODAY), "0"), (str(TODAY), "1"), (str(TODAY), "2")]


def test_429_and_503_are_waited_out_and_nothing_doubles(
    backend: str,
    make_settings: Callable[..., Settings],
    server: HttpTestServer,
    hf: HfDailyPapersApi,
) -> None:
    hf.add(day(-1), *hf_papers("2410.5", 150))
    limited = {
        "Retry-After": "3",
        "RateLimit": '"api";r=0;t=3',
        "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
    }
    server.queue(HF_PATH, Reply(200, b"[]"))  # day -3: quiet
    server.queue(HF_PATH, Reply.json({"error": "rate limited"}, 429, limited))
    server.queue(HF_PATH, Reply(503, b"Service Unavailable", content_type="text/plain"))
    settings = hf_settings(make_settings, server)
    sleeps: list[float] = []

    report = fetch_all(settings, now=NOW, sleep=sleeps.append)

    assert report.failed == [] and report.new == 150
    assert 3.0 in sleeps  # Retry-After honoured exactly
    assert count_papers(settings) == 150 and count_sightings(settings) == 150


def test_weekend_is_quiet_and_a_future_date_400_is_not_an_error(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    api = HfDailyPapersApi(today=day(1))  # the server's today: Saturday
    api.add(day(0), *hf_papers("2410.6", 3))
    server.route(HF_PATH, api)
    sunday = datetime(2024, 10, 27, 9, 0, tzinfo=UTC)  # our clock runs ahead of the server's
    settings = hf_settings(make_settings, server, source={"lookback_days": 2})

    report = fetch_all(settings, now=sunday)

    (source,) = report.sources
    assert (source.status, source.new) == ("ok", 3)
    assert source.batches == [
        "2024-10-25: 3 papers, 1 page",
        "2024-10-26: 0 papers, 1 page",
        "2024-10-27: not published yet",
    ]
    saved = state(settings, "hf")
    assert saved is not None and saved.last_date == day(1)  # Saturday is complete (and empty)


def test_truncated_json_stores_nothing_of_that_day_and_keeps_earlier_days(
    backend: str,
    make_settings: Callable[..., Settings],
    server: HttpTestServer,
    hf: HfDailyPapersApi,
) -> None:
    hf.add(day(-2), *hf_papers("2410.7", 10))
    hf.add(day(-1), *hf_papers("2410.8", 120))
    broken = {"on": True}

    def flaky(request: Request) -> Reply:
        if broken["on"] and request.query == {"date": str(day(-1)), "limit": "100", "p": "1"}:
            whole = hf(request).body
            return Reply(200, whole[: len(whole) // 2])  # a complete response, cut JSON
        return hf(request)

    server.route(HF_PATH, flaky)
    settings = hf_settings(make_settings, server)

    report = fetch_all(settings, now=NOW)

    (source,) = report.sources
    assert source.status == "error" and source.error_kind == "fetch"
    assert "p=1: line 1, column" in (source.error or "")
    assert count_papers(settings) == 10  # day -2 only; nothing of day -1, not even page 0
    saved = state(settings, "hf")
    assert saved is not None and saved.last_date == day(-2)
    assert saved.last_error and saved.last_error_at == NOW
    (run,) = fetch_runs(settings)
    assert (run.status, run.new_count) == ("error", 10) and run.error == source.error

    broken["on"] = False
    retry = fetch_all(settings, now=NOW)
    assert retry.failed == [] and retry.new == 120
    assert count_papers(settings) == 130
    assert state(settings, "hf").last_error is None  # type: ignore[union-attr]  # present here, or the test fails on None


def test_partial_day_adds_papers_refreshes_upvotes_never_drops(
    backend: str,
    make_settings: Callable[..., Settings],
    server: HttpTestServer,
    hf: HfDailyPapersApi,
) -> None:
    hf.add(day(0), *hf_papers("2410.9", 5, upvotes=1))
    settings = hf_settings(make_settings, server, source={"lookback_days": 0})
    assert fetch_all(settings, now=NOW).new == 5

    hf.days[str(day(0))] = hf_papers("2410.9", 8, upvotes=30)[2:]  # 0 and 1 vanished upstream
    later = NOW.replace(hour=18)
    report = fetch_all(settings, now=later)

    assert (report.new, report.seen, report.sources[0].updated) == (3, 3, 3)
    assert count_papers(settings) == 8  # the two that vanished upstream are still stored
    refreshed = paper(settings, "arxiv:2410.90003")
    assert refreshed.upvotes == 30 and refreshed.first_seen_at == NOW  # not re-announced
    assert state(settings, "hf").last_date is None  # type: ignore[union-attr]  # present here, or the test fails on None


def test_every_field_is_mapped(make_settings: Callable[..., Settings]) -> None:
    with HttpTestServer() as server:
        server.route(HF_PATH, Reply(200, (DATA / "hf" / "2024-10-24.json").read_bytes()))
        settings = fast(make_settings)
        spec = SourceSpec(name="hf", kind="hf_daily", url=server.url(HF_PATH), lookback_days=0)
        with httpx.Client() as client:
            ctx = make_context(settings, client, now=NOW)
            (batch,) = list(SOURCE_TYPES["hf_daily"](spec).fetch(ctx, Cursor(last_date=day(-1))))
    first = batch.records[0]
    assert first.arxiv_id == "2410.17243"
    assert first.title.endswith("Scaling for Contrastive Loss")  # hard wrap collapsed
    assert first.abstract.startswith("Contrastive loss is a powerful approach for representation")
    assert first.authors == ("Zesen Cheng", "Hang Zhang", "Lidong Bing")
    assert first.published == datetime(2024, 10, 22, 17, 59, 30, tzinfo=UTC)  # arXiv date
    assert first.listed_at == datetime(2024, 10, 24, 0, 57, 9, 392000, tzinfo=UTC)  # Daily date
    assert (first.upvotes, first.github_stars) == (64, 120)
    assert first.github_repo == "https://github.com/DAMO-NLP-SG/Inf-CLIP"
    assert first.project_page == "https://damo-nlp-sg.github.io/Inf-CLIP/"
    assert first.keywords == ("contrastive loss", "tile-based computation", "ring topology")
    assert first.thumbnail and first.thumbnail.endswith("/2410.17243.png")
    assert first.ai_summary and first.organization == "DAMO Academy NLP Singapore"
    assert [r.arxiv_id for r in batch.records] == ["2410.17243", "2410.18057", "2410.16153"]


def test_token_is_sent_as_bearer_and_a_refusal_names_the_setting(
    make_settings: Callable[..., Settings], server: HttpTestServer
) -> None:
    api = HfDailyPapersApi(today=TODAY, token="hf_secret")
    api.add(day(0), *hf_papers("2410.1", 2))
    server.route(HF_PATH, api)
    without = hf_settings(make_settings, server, source={"lookback_days": 0})
    (failed,) = fetch_all(without, now=NOW).failed
    assert "HTTP 401" in (failed.error or "") and "DIGEST_HF_TOKEN" in (failed.error or "")

    with_token = hf_settings(
        make_settings, server, source={"lookback_days": 0}, hf_token="hf_secret"
    )
    assert fetch_all(with_token, now=NOW).new == 2
    assert server.requests[-1].headers["authorization"] == "Bearer hf_secret"


def test_since_overrides_the_start_date(
    make_settings: Callable[..., Settings], server: HttpTestServer, hf: HfDailyPapersApi
) -> None:
    hf.add(day(-10), *hf_papers("2410.2", 4))
    settings = hf_settings(make_settings, server)
    assert fetch_all(settings, now=NOW).new == 0  # three days back finds nothing
    assert fetch_all(settings, now=NOW, since=day(-10)).new == 4
    assert hf_requests(server)[-11][0] == str(day(-10))


def test_oversize_page_is_refused_and_nothing_is_stored(
    make_settings: Callable[..., Settings], server: HttpTestServer, hf: HfDailyPapersApi
) -> None:
    hf.add(day(0), *hf_papers("2410.3", 60))
    settings = hf_settings(
        make_settings, server, source={"lookback_days": 0}, max_listing_bytes=4096
    )
    (failed,) = fetch_all(settings, now=NOW).failed
    assert "limit is 4,096 bytes" in (failed.error or "")
    assert count_papers(settings) == 0


def test_one_failing_source_never_stops_the_others(
    backend: str,
    make_settings: Callable[..., Settings],
    server: HttpTestServer,
    hf: HfDailyPapersApi,
) -> None:
    hf.add(day(0), *hf_papers("2410.4", 3))
    server.route("/broken", Reply(500, b"oops"))
    broken = {"name": "down", "kind": "hf_daily", "url": server.url("/broken"), "lookback_days": 0}
    good = {"name": "hf", "kind": "hf_daily", "url": server.url(HF_PATH), "lookback_days": 0}
    settings = fast(make_settings, sources=[broken, good], http_retries=1)

    report = fetch_all(settings, now=NOW)

    assert [(s.name, s.status) for s in report.sources] == [("down", "error"), ("hf", "ok")]
    assert report.as_dict()["sources"]["hf"]["new"] == 3
    assert json.loads(json.dumps(report.as_dict()))["failed"] == 1
    assert [(r.source, r.status) for r in fetch_runs(settings)] == [
        ("down", "error"),
        ("hf", "ok"),
    ]
    assert paper_keys(settings) == [f"arxiv:2410.4000{n}" for n in range(3)]


def test_imitation_refuses_limit_over_100(server: HttpTestServer, hf: HfDailyPapersApi) -> None:
    response = httpx.get(server.url(HF_PATH), params={"date": str(TODAY), "limit": 101})
    assert response.status_code == 400 and "error" in response.json()


def test_dates_pulled(settings: Settings) -> None:
    source = HfDaily(SourceSpec(name="hf", kind="hf_daily", lookback_days=2))
    with httpx.Client() as client:
        ctx = make_context(settings, client, now=NOW)
        since = make_context(settings, client, now=NOW, since=day(-1))
        probe = make_context(settings, client, now=NOW, probe=True)
    assert source.dates(ctx, Cursor()) == [day(-2), day(-1), day(0)]
    assert source.dates(ctx, Cursor(last_date=day(-1))) == [day(0)]
    assert source.dates(ctx, Cursor(last_date=day(0))) == [day(0)]  # today is always pulled
    assert source.dates(since, Cursor(last_date=day(-5))) == [day(-1), day(0)]
    assert source.dates(probe, Cursor()) == [day(0)]
    assert source.spec.resolved_url == "https://huggingface.co/api/daily_papers"


def test_a_timeout_is_retried_and_a_persistent_one_fails_the_run(
    make_settings: Callable[..., Settings], server: HttpTestServer, hf: HfDailyPapersApi
) -> None:
    hf.add(day(0), *hf_papers("2410.5", 4))
    settings = hf_settings(
        make_settings, server, source={"lookback_days": 0}, http_timeout=0.3, http_retries=1
    )
    server.queue(HF_PATH, Reply(200, b"[]", delay=2.0))
    assert fetch_all(settings, now=NOW).new == 4  # the second attempt answered
    assert count_papers(settings) == 4

    server.queue(HF_PATH, Reply(200, b"[]", delay=2.0), Reply(200, b"[]", delay=2.0))
    (failed,) = fetch_all(settings, now=NOW).failed
    assert "timed out (0.3 s) after 2 attempts" in (failed.error or "")
    assert fetch_runs(settings)[-1].status == "error" and count_papers(settings) == 4
