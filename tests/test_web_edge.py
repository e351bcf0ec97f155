"""The web edge over real sockets: tokens never reach an access log whatever the path looks
like, redirects never follow the Host header, and X-Forwarded-For is believed only from a
configured proxy (a real ``digest serve`` process).

Requests are written by hand (``http.client``): an HTTP client library would normalise
``//manage/…`` or refuse a forged Host header before it reached the server.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import uvicorn
from web_fixtures import (  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
    SettingsFactory,
    make_app,
    seed,
)

from digest.config.settings import Settings

DIGEST = Path(sys.executable).parent / "digest"


class Records(logging.Handler):
    """Every server-side log line (uvicorn's access log and the app's own)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("digest", "uvicorn.access")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def uvicorn_with_access_log(settings: Settings) -> Iterator[int]:
    """The app under uvicorn with uvicorn's own access log on (the worst case)."""
    port = _free_port()
    config = uvicorn.Config(
        make_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=True
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


@dataclass(frozen=True)
class Answer:
    status: int
    location: str | None
    cookie: str  # the first Set-Cookie's name=value, or ""
    body: str


def raw_request(
    port: int,
    method: str,
    target: str,
    *,
    host: str = "evil.example",
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> Answer:
    """One request with exactly this target and Host header."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
    connection.putheader("Host", host)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    payload = body.encode() if body is not None else None
    if payload is not None:
        connection.putheader("Content-Length", str(len(payload)))
    connection.endheaders(payload)
    response = connection.getresponse()
    content = response.read().decode("utf-8", "replace")
    connection.close()
    cookie = (response.getheader("set-cookie") or "").split(";", 1)[0]
    return Answer(response.status, response.getheader("location"), cookie, content)


def test_token_paths_are_redacted_and_redirects_use_the_base_url(
    make_settings: SettingsFactory, records: Records
) -> None:
    settings = make_settings()
    ada = seed(settings)
    token = ada.token
    base = settings.base_url  # https://digest.example.org
    # target → (GET status, HEAD status, Location or None)
    expected = {
        f"/feeds/{token}.atom/": (308, 308, f"{base}/feeds/{token}.atom"),
        f"/feeds/{token}.rss//": (308, 308, f"{base}/feeds/{token}.rss"),
        f"//manage/{token}": (308, 308, f"{base}/manage/{token}"),
        f"/manage//{token}": (308, 308, f"{base}/manage/{token}"),
        f"/manage/{token}/": (308, 308, f"{base}/manage/{token}"),
        f"/manage/{token}/preview/?x={token}": (
            308,
            308,
            f"{base}/manage/{token}/preview?x={token}",
        ),
        f"/unsubscribe/{token}/": (308, 308, f"{base}/unsubscribe/{token}"),
        f"/MANAGE/{token}": (404, 404, None),
        f"/Feeds/{token}.atom": (404, 404, None),
        f"/manage/{token}/nowhere": (404, 404, None),
        f"/{token}": (404, 404, None),
        f"/manage/{token[:20]}": (404, 405, None),  # a cut link: unknown token (GET-only page)
        f"/feeds/{token}.atom": (200, 200, None),
        "/feeds/all.atom/": (308, 308, f"{base}/feeds/all.atom"),
        "//": (308, 308, f"{base}/"),
    }
    with uvicorn_with_access_log(settings) as port:
        for target, (get, head, location) in expected.items():
            for method, status in (("GET", get), ("HEAD", head)):
                response = raw_request(port, method, target)
                where = location if status == 308 else None
                assert (response.status, response.location) == (status, where), (method, target)
        # Only GET and HEAD are redirected: a form post to a slash variant is not followed.
        posted = raw_request(
            port,
            "POST",
            f"/unsubscribe/{token}/",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=urlencode({"List-Unsubscribe": "One-Click"}),
        )
        assert posted.status == 404
    text = "\n".join(records.lines)
    assert token[:16] not in text, [line for line in records.lines if token[:16] in line]
    assert "evil.example" not in text
    access = [line for line in records.lines if re.search(r"\b(GET|HEAD|POST) /", line)]
    uvicorn_lines = [line for line in access if '"' in line]  # 127.0.0.1:… - "GET … HTTP/1.1"
    app_lines = [line for line in access if '"' not in line]
    assert len(uvicorn_lines) == len(app_lines) == 2 * len(expected) + 1
    for fragment in (
        'GET /feeds/[redacted].atom/ HTTP/1.1" 308',
        'GET //manage/[redacted] HTTP/1.1" 308',
        'GET /manage//[redacted] HTTP/1.1" 308',
        'GET /MANAGE/[redacted] HTTP/1.1" 404',
        'GET /[redacted] HTTP/1.1" 404',
        'POST /unsubscribe/[redacted]/ HTTP/1.1" 404',
    ):
        assert any(fragment in line for line in uvicorn_lines), fragment
    assert any(line.startswith("GET /manage/[redacted]/preview/ 308") for line in app_lines)


# ---------------------------------------------------------------------------- forwarded


@contextmanager
def digest_serve(settings: Settings, logs: Path, **env: str) -> Iterator[int]:
    """``digest serve`` as a process on a free port; killed whatever happens."""
    port = _free_port()
    child = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    child.update(
        DIGEST_DATA_DIR=str(settings.data_dir),
        DIGEST_BASE_URL=f"http://127.0.0.1:{port}",
        DIGEST_MAIL_FROM=settings.mail_from,
        DIGEST_DELIVERY="outbox",
        DIGEST_SCHEDULER_FETCH_CRON="off",
        DIGEST_SUBSCRIBE_IP_LIMIT="5",
        **env,
    )
    if settings.database_url:
        child["DIGEST_DATABASE_URL"] = settings.database_url
    with logs.open("wb") as log:
        process = subprocess.Popen(
            [str(DIGEST), "serve", "--port", str(port)],
            env=child,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, logs.read_text()
            assert time.monotonic() < deadline, "digest serve did not answer in 30 s"
            try:
                if raw_request(port, "GET", "/healthz", host="127.0.0.1").status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _signup(port: int, number: int, forwarded_for: str) -> int:
    """One complete signup from "client" ``forwarded_for``: the form, then its post."""
    page = raw_request(port, "GET", "/", host=f"127.0.0.1:{port}")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.body)
    assert match and page.cookie, page
    form = {"email": f"reader{number}@example.org", "keywords": "diffusion"}
    response = raw_request(
        port,
        "POST",
        "/subscribe",
        host=f"127.0.0.1:{port}",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": page.cookie,
            "X-Forwarded-For": forwarded_for,
        },
        body=urlencode({**form, "csrf_token": match.group(1)}),
    )
    return response.status


def test_spoofed_forwarded_for_does_not_bypass_the_rate_limit(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    """By default no proxy is trusted: 25 posts naming 25 clients are one client, limit 5."""
    settings = make_settings()
    with digest_serve(settings, tmp_path / "serve.log") as port:
        statuses = [_signup(port, n, f"198.51.100.{n}") for n in range(25)]
    assert statuses == [200] * 5 + [429] * 20


def test_a_configured_proxy_names_the_client(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    """With the proxy trusted, each forwarded client has its own limit, and still has one:
    an address the client wrote itself before the proxy's (nginx appends) changes nothing."""
    settings = make_settings()
    with digest_serve(
        settings, tmp_path / "serve.log", DIGEST_WEB_FORWARDED_ALLOW_IPS="127.0.0.1"
    ) as port:
        others = [_signup(port, n, f"198.51.100.{n}") for n in range(8)]
        one = [_signup(port, 100 + n, f"10.9.9.{n}, 203.0.113.9") for n in range(7)]
    assert others == [200] * 8
    assert one == [200] * 5 + [429] * 2
