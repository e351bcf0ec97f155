"""`digest sources …` and `digest fetch` through the CLI, against local imitations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Cli
from sources_support import NOW, TODAY, count_papers, count_sightings, day, fetch_runs, hf_papers

from digest.config.settings import Settings
from digest.testing.http import HttpTestServer, Reply
from digest.testing.imitations import HF_PATH, ArxivItem, ArxivListings, HfDailyPapersApi

WHEN = ["--now", NOW.isoformat()]


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """No backoff waits or arXiv spacing in CLI runs (Retry-After is still honoured)."""
    monkeypatch.setenv("DIGEST_HTTP_RETRY_WAIT", "0")
    monkeypatch.setenv("DIGEST_ARXIV_DELAY", "0")


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as running:
        yield running


def test_add_list_remove(cli: Cli) -> None:
    cli("sources", "add", "hf", "--kind", "hf_daily", "--lookback-days", "2")
    cli("sources", "add", "ml", "--kind", "arxiv", "--categories", "cs.LG,cs.AI", "--cross")
    cli("sources", "add", "blog", "--kind", "feed", "--url", "https://example.org/feed.xml")
    listed = cli.json("sources", "list")
    assert [(s["name"], s["kind"], s["origin"]) for s in listed] == [
        ("blog", "feed", "store"),
        ("hf", "hf_daily", "store"),
        ("ml", "arxiv", "store"),
    ]
    ml = listed[2]
    assert ml["url"] == "https://rss.arxiv.org/rss/cs.LG+cs.AI"
    assert ml["options"] == {"categories": ["cs.LG", "cs.AI"], "cross": True}
    assert "ml" in cli("sources", "list").stdout

    duplicate = cli("sources", "add", "ml", "--kind", "feed", "--url", "https://x.org/f", code=1)
    assert "already exists" in duplicate.output
    cli("sources", "remove", "ml")
    assert [s["name"] for s in cli.json("sources", "list")] == ["blog", "hf"]
    assert "unknown source 'ml'" in cli("sources", "remove", "ml", code=1).output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "rss"], "kind: Input should be"),
        (["--kind", "arxiv"], "needs categories"),
        (["--kind", "feed", "--url", "ftp://x.org/f"], "absolute http(s) URL"),
    ],
)
def test_add_refuses_bad_definitions_in_one_line(cli: Cli, args: list[str], message: str) -> None:
    result = cli("sources", "add", "bad", *args, code=1)
    assert message in result.output and result.output.count("\n") == 1
    assert cli.json("sources", "list") == []


def test_digest_toml_sources_are_listed_and_not_removable(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text(
        '[[sources]]\nname = "hf"\nkind = "hf_daily"\n\n'
        '[[sources]]\nname = "ml"\nkind = "arxiv"\ncategories = ["cs.LG"]\nenabled = false\n'
    )
    listed = cli.json("sources", "list")
    assert [(s["name"], s["origin"], s["enabled"]) for s in listed] == [
        ("hf", "config", True),
        ("ml", "config", False),
    ]
    assert "remove it there" in cli("sources", "remove", "hf", code=1).output
    assert "already exists" in cli("sources", "add", "hf", "--kind", "hf_daily", code=1).output


def test_fetch_session_every_paper_once_through_pagination_429_and_503(
    cli: Cli, quick: None, server: HttpTestServer, settings: Settings
) -> None:
    """The judged session: an HF imitation and an arXiv feed, with rate limits and outages."""
    hf = HfDailyPapersApi(today=TODAY)
    hf.add(day(-2), *hf_papers("2410.1", 40))
    hf.add(day(-1), *hf_papers("2410.2", 210))  # three pages
    hf.add(day(0), *hf_papers("2410.3", 12))
    server.route(HF_PATH, hf)
    shared = hf_papers("2410.2", 1)[0]["paper"]["id"]  # also on arXiv: one paper, not two
    arxiv_items = [ArxivItem(f"2410.5{n:04d}", f"arXiv paper {n}") for n in range(30)]
    arxiv_items.append(ArxivItem(shared, "Paper 2410.2 number 0 on learning"))
    server.route("/rss/", ArxivListings({"cs.LG": arxiv_items}))
    server.queue(
        HF_PATH,
        Reply(200, b"[]"),  # day -3
        Reply.json({"error": "Too many requests"}, 429, {"Retry-After": "1"}),
        Reply(503),
        Reply(502),
    )
    server.queue("/rss/cs.LG", Reply(503, headers={"Retry-After": "0"}))
    cli("sources", "add", "hf", "--kind", "hf_daily", "--url", server.url(HF_PATH),
        "--lookback-days", "3")  # fmt: skip
    cli("sources", "add", "ml", "--kind", "arxiv", "--url", server.url("/rss"),
        "--categories", "cs.LG")  # fmt: skip

    first = cli.json("fetch", *WHEN)

    assert isinstance(first["new"], int) and isinstance(first["seen"], int)
    assert (first["new"], first["seen"], first["failed"]) == (292, 1, 0)
    assert first["sources"]["hf"]["new"] == 262 and first["sources"]["ml"]["new"] == 30
    assert count_papers(settings) == 292
    assert count_sightings(settings) == 293  # the shared paper was seen by both sources

    second = cli.json("fetch", *WHEN)
    assert (second["new"], second["seen"]) == (0, 12 + 31)  # today's HF again, arXiv again
    assert count_papers(settings) == 292
    assert [(r.source, r.status) for r in fetch_runs(settings)] == [
        ("hf", "ok"),
        ("ml", "ok"),
        ("hf", "ok"),
        ("ml", "ok"),
    ]


def test_fetch_exits_non_zero_when_a_source_fails(
    cli: Cli, quick: None, server: HttpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_HTTP_RETRIES", "0")
    hf = HfDailyPapersApi(today=TODAY)
    hf.add(day(0), *hf_papers("2410.1", 2))
    server.route(HF_PATH, hf)
    server.route("/rss/", ArxivListings({"cs.LG": []}))
    cli("sources", "add", "hf", "--kind", "hf_daily", "--url", server.url(HF_PATH),
        "--lookback-days", "0")  # fmt: skip
    cli("sources", "add", "bad", "--kind", "arxiv", "--url", server.url("/rss"),
        "--categories", "cs.XX")  # fmt: skip

    result = cli("fetch", "--json", *WHEN, code=1)

    report = json.loads(result.stdout)
    assert report["new"] == 2 and report["failed"] == 1
    assert report["sources"]["bad"]["error_kind"] == "config"
    assert "error: bad: " in result.stderr and "Feed error for query: cs.XX" in result.stderr
    table = cli("fetch", "--source", "hf", *WHEN)
    assert "new 0, seen 2, failed 0" in table.stdout


def test_fetch_refuses_unknown_sources_and_bad_dates(cli: Cli) -> None:
    assert "unknown source 'x'" in cli("fetch", "--source", "x", code=1).output
    assert "not a date" in cli("fetch", "--since", "yesterday", code=2).output
    assert "after today" in cli("fetch", "--since", "2999-01-01", code=1).output


def test_sources_test_prints_what_it_parsed(cli: Cli, quick: None, server: HttpTestServer) -> None:
    server.route("/rss/", ArxivListings({"cs.LG": [ArxivItem("2410.00001", "A probed paper")]}))
    cli("sources", "add", "ml", "--kind", "arxiv", "--url", server.url("/rss"),
        "--categories", "cs.LG")  # fmt: skip
    shown = cli("sources", "test", "ml", *WHEN).stdout
    assert "ok, 1 items (1 announced)" in shown and "A probed paper" in shown
    assert cli.json("sources", "test", "ml", *WHEN)["papers"] == 1
