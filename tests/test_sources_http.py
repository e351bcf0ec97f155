"""The shared HTTP rim of the sources, against a real server on loopback."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise

import httpx
import pytest

from digest.errors import ListingTooLargeError, SourceFetchError
from digest.sources.http import Http, RetryPolicy, Spacing, retry_after_seconds
from digest.testing.http import HttpTestServer, Reply, static


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as opened:
        yield opened


def make_http(
    client: httpx.Client,
    *,
    retries: int = 3,
    max_wait: float = 60.0,
    max_bytes: int = 1_000_000,
    timeout: float = 5.0,
    sleeps: list[float] | None = None,
) -> Http:
    return Http(
        client,
        timeout=timeout,
        max_bytes=max_bytes,
        policy=RetryPolicy(retries=retries, first_wait=0.0, max_wait=max_wait),
        agent="paper-digest/test (+https://digest.example.org; mailto:ops@example.org)",
        sleep=(sleeps.append if sleeps is not None else time.sleep),
    )


def test_503_then_success_is_retried(server: HttpTestServer, client: httpx.Client) -> None:
    server.route("/x", Reply(200, b"[]"))
    server.queue("/x", Reply(503, b"busy"), Reply(502))
    fetched = make_http(client).get(server.url("/x"))
    assert (fetched.status, fetched.body) == (200, b"[]")
    assert len(server.requests_to("/x")) == 3


def test_429_retry_after_is_honoured_exactly(server: HttpTestServer, client: httpx.Client) -> None:
    server.route("/x", Reply(200, b"[]"))
    server.queue("/x", Reply(429, headers={"Retry-After": "7"}))
    sleeps: list[float] = []
    make_http(client, sleeps=sleeps).get(server.url("/x"))
    assert sleeps == [7.0]


def test_429_ratelimit_header_gives_the_wait(server: HttpTestServer, client: httpx.Client) -> None:
    server.route("/x", Reply(200, b"[]"))
    limited = {"RateLimit": '"api";r=0;t=42', "RateLimit-Policy": '"fixed window";q=500;w=300'}
    server.queue("/x", Reply(429, headers=limited))
    sleeps: list[float] = []
    make_http(client, sleeps=sleeps).get(server.url("/x"))
    assert sleeps == [42.0]


def test_retry_after_beyond_the_cap_gives_up_at_once(
    server: HttpTestServer, client: httpx.Client
) -> None:
    server.route("/x", Reply(429, headers={"Retry-After": "300"}))
    sleeps: list[float] = []
    with pytest.raises(SourceFetchError, match="asks to wait 300 s, more than the 60 s"):
        make_http(client, sleeps=sleeps).get(server.url("/x"))
    assert sleeps == [] and len(server.requests) == 1


def test_persistent_5xx_fails_after_the_declared_retries(
    server: HttpTestServer, client: httpx.Client
) -> None:
    server.route("/x", Reply(500))
    with pytest.raises(SourceFetchError, match=r"HTTP 500 Internal Server Error after 3 attempts"):
        make_http(client, retries=2).get(server.url("/x"))
    assert len(server.requests) == 3


def test_4xx_is_returned_not_retried(server: HttpTestServer, client: httpx.Client) -> None:
    server.route("/x", Reply.json({"error": "nope"}, 404))
    fetched = make_http(client).get(server.url("/x"))
    assert fetched.status == 404 and len(server.requests) == 1
    assert fetched.text_excerpt() == '{"error": "nope"}'


def test_timeout_is_retried_then_reported(server: HttpTestServer, client: httpx.Client) -> None:
    server.route("/slow", Reply(200, b"[]", delay=2.0))
    started = time.monotonic()
    with pytest.raises(SourceFetchError, match=r"timed out \(0.2 s\) after 2 attempts"):
        make_http(client, retries=1, timeout=0.2).get(server.url("/slow"))
    assert time.monotonic() - started < 1.5
    assert len(server.requests) == 2


def test_dropped_connection_mid_body_is_retried(
    server: HttpTestServer, client: httpx.Client
) -> None:
    body = b'[{"paper": {"id": "2410.00001", "title": "T"}}]'
    server.route("/x", Reply(200, body))
    server.queue("/x", Reply(200, body, cut_at=10))
    assert make_http(client).get(server.url("/x")).body == body
    assert len(server.requests) == 2


def test_connection_refused_is_a_fetch_error(client: httpx.Client) -> None:
    with HttpTestServer() as gone:
        url = gone.url("/x")
    with pytest.raises(SourceFetchError, match="ConnectError"):
        make_http(client, retries=1).get(url)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversize_body_is_refused_while_streaming(
    server: HttpTestServer, client: httpx.Client, chunked: bool
) -> None:
    server.route("/big", Reply(200, b"x" * 50_000, chunked=chunked))
    with pytest.raises(ListingTooLargeError, match="limit is 4,096 bytes"):
        make_http(client, max_bytes=4096).get(server.url("/big"))
    assert len(server.requests) == 1  # refused, not retried


def test_user_agent_and_extra_headers_are_sent(
    server: HttpTestServer, client: httpx.Client
) -> None:
    server.route("/x", Reply(200, b"[]"))
    make_http(client).get(server.url("/x"), headers={"Authorization": "Bearer t"})
    headers = server.requests[0].headers
    assert headers["user-agent"].startswith("paper-digest/test (+https://digest.example.org")
    assert headers["authorization"] == "Bearer t"


def test_next_link_is_resolved_and_kept_on_the_same_host(
    server: HttpTestServer, client: httpx.Client
) -> None:
    server.route("/a", Reply(200, b"[]", headers={"Link": '</a?p=1>; rel="next"'}))
    server.route("/b", Reply(200, b"[]", headers={"Link": '<https://evil.example/a>; rel="next"'}))
    http = make_http(client)
    assert http.get(server.url("/a")).next_url == server.url("/a?p=1")
    assert http.get(server.url("/b")).next_url is None


def test_conditional_get_with_static_route(server: HttpTestServer, client: httpx.Client) -> None:
    server.route("/feed", static(b"<rss/>", etag='"v1"'))
    http = make_http(client)
    assert http.get(server.url("/feed")).headers["etag"] == '"v1"'
    assert http.get(server.url("/feed"), headers={"If-None-Match": '"v1"'}).status == 304


def test_retry_after_forms() -> None:
    now = datetime(2024, 10, 25, 12, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds({"retry-after": "12"}) == 12.0
    assert retry_after_seconds({"retry-after": later}, now=now) == 90.0
    assert retry_after_seconds({"ratelimit": "limit=500, remaining=0, reset=30"}) == 30.0
    assert retry_after_seconds({"ratelimit": '"default";r=0;t=5'}) == 5.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_spacing_serialises_and_spaces_threads() -> None:
    spacing = Spacing(0.05)
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def work() -> None:
        with spacing.slot():
            start = time.monotonic()
            time.sleep(0.01)
            with lock:
                spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    spans.sort()
    assert len(spans) == 4
    for (_, end), (start, _) in pairwise(spans):
        assert start - end >= 0.05  # never overlapping, always spaced


def test_spacing_between_requests_seen_by_the_server(
    server: HttpTestServer, client: httpx.Client
) -> None:
    server.route("/x", Reply(200, b"[]"))
    http, spacing = make_http(client), Spacing(0.15)
    for _ in range(3):
        http.get(server.url("/x"), spacing=spacing)
    arrivals = [request.at for request in server.requests]
    assert all(b - a >= 0.15 for a, b in pairwise(arrivals))


def test_compressed_body_is_capped_after_decoding(
    server: HttpTestServer, client: httpx.Client
) -> None:
    bomb = gzip.compress(b"0" * 200_000)
    assert len(bomb) < 4096
    server.route("/bomb", Reply(200, bomb, {"Content-Encoding": "gzip"}))
    with pytest.raises(ListingTooLargeError, match="is larger than that"):
        make_http(client, max_bytes=4096).get(server.url("/bomb"))


def test_corrupt_content_encoding_is_a_fetch_error(
    server: HttpTestServer, client: httpx.Client
) -> None:
    server.route("/bad", Reply(200, b"not gzip at all", {"Content-Encoding": "gzip"}))
    with pytest.raises(SourceFetchError, match="DecodingError"):
        make_http(client).get(server.url("/bad"))
