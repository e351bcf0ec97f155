"""Security headers, constant-time token checks, signed links, rate limiter, redacted logs."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from jinja2 import Environment
from web_fixtures import (  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
    RUN_AT,
    Clock,
    SettingsFactory,
    csrf_of,
    make_app,
    seed,
    web_client,
)

from digest.web import security
from digest.web.access_log import RedactUvicornAccess, redact_path
from digest.web.deps import page_environment
from digest.web.ratelimit import RateLimiter
from digest.web.security import ConfirmSigner

TOKEN = "Abc_def-0123456789abcdefghijklmn"


class Records(logging.Handler):
    """Collects every formatted log line of the server side (not the test's own client)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("httpx", "httpcore")):  # the client logs its URLs
            self.lines.append(self.format(record))


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    loggers = [logging.getLogger(name) for name in ("", "digest", "uvicorn", "uvicorn.access")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_security_headers_everywhere(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    paths = [
        "/",
        f"/manage/{ada.token}",
        f"/unsubscribe/{ada.token}",
        f"/feeds/{ada.token}.atom",
        "/feeds/all.json",
        "/static/site.css",
        "/robots.txt",
        "/healthz",
        "/confirm/bad",
        "/nowhere",
    ]
    with web_client(make_app(settings)) as client:
        for path in paths:
            response = client.get(path)
            headers = response.headers
            csp = headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'none'" in csp, path
            assert "frame-ancestors 'none'" in csp
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["x-frame-options"] == "DENY"
            assert headers["strict-transport-security"].startswith("max-age=")
            if not path.startswith(("/feeds/", "/static/", "/robots")):
                assert headers["cache-control"] == "no-store", path
            if response.headers["content-type"].startswith("text/html"):
                assert '<html lang="en">' in response.text and "<script" not in response.text
        assert client.get("/static/site.css").text.startswith("/*")
    http_settings = make_settings(base_url="http://localhost:8000")
    with web_client(make_app(http_settings)) as client:
        landing = client.get("http://localhost:8000/")
        assert "strict-transport-security" not in landing.headers
        assert "secure" not in landing.headers["set-cookie"].lower()  # works on plain http


def test_csrf_cookie_attributes(make_settings: SettingsFactory) -> None:
    with web_client(make_app(make_settings())) as client:
        cookie = client.get("/").headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
        assert "set-cookie" not in client.get("/").headers  # kept once set


def test_tokens_are_compared_in_constant_time(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings()
    ada = seed(settings, deliver=False)
    calls: list[tuple[bytes, bytes]] = []
    real = security.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security, "compare_digest", spy)
    with web_client(make_app(settings)) as client:
        assert client.get(f"/manage/{ada.token}").status_code == 200
        assert (ada.token.encode(), ada.token.encode()) in calls
        calls.clear()
        assert client.get(f"/feeds/{ada.token}.json").status_code == 200
        assert calls == [(ada.token.encode(), ada.token.encode())]


def test_confirm_signer() -> None:
    signer = ConfirmSigner("k" * 32, max_age=3600)
    signed = signer.sign(42, TOKEN, RUN_AT)
    assert TOKEN not in signed and "@" not in signed
    claim = signer.read(signed, RUN_AT + timedelta(minutes=59))
    assert claim is not None and claim.subscriber_id == 42
    assert claim.fingerprint == security.token_fingerprint(TOKEN)
    assert signer.read(signed, RUN_AT + timedelta(hours=1, seconds=1)) is None  # expired
    assert ConfirmSigner("other" * 8, max_age=3600).read(signed, RUN_AT) is None
    assert signer.read(signed.replace("42-", "43-", 1), RUN_AT) is None
    assert signer.read("", RUN_AT) is None


def test_rate_limiter_window_and_memory_bound() -> None:
    now = [0.0]
    limiter = RateLimiter(limit=2, window=10, max_keys=3, clock=lambda: now[0])
    assert limiter.hit("a") and limiter.hit("a")
    assert not limiter.hit("a")
    now[0] = 9.9
    assert not limiter.hit("a")
    now[0] = 10.1  # the first two hits left the window
    assert limiter.hit("a")
    for key in ("b", "c", "d", "e"):
        limiter.hit(key)
    assert len(limiter) == 3  # least recently used keys forgotten
    with pytest.raises(ValueError):
        RateLimiter(limit=0, window=1)


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        (f"/manage/{TOKEN}", "/manage/[redacted]"),
        (f"/manage/{TOKEN}/pause?x={TOKEN}", "/manage/[redacted]/pause"),
        (f"/unsubscribe/{TOKEN}", "/unsubscribe/[redacted]"),
        (f"/confirm/1-abc.def.{TOKEN}", "/confirm/[redacted]"),
        (f"/feeds/{TOKEN}.atom", "/feeds/[redacted].atom"),
        ("/feeds/all.atom", "/feeds/all.atom"),
        ("/subscribe", "/subscribe"),
    ],
)
def test_redact_path(path: str, logged: str) -> None:
    assert redact_path(path) == logged


def test_no_tokens_in_logs(make_settings: SettingsFactory, records: Records) -> None:
    settings = make_settings()
    ada = seed(settings)
    clock = Clock(RUN_AT)
    app = make_app(settings, clock)
    signed = app.state.web.signer.sign(ada.subscriber_id, ada.token, RUN_AT)
    with web_client(app) as client:
        page = client.get(f"/manage/{ada.token}").text
        client.get(f"/manage/{ada.token}/preview")
        client.post(f"/manage/{ada.token}", data={"keywords": "x", "csrf_token": csrf_of(page)})
        client.get(f"/feeds/{ada.token}.rss")
        client.get(f"/confirm/{signed}")
        client.get(f"/unsubscribe/{ada.token}")
        client.post(f"/unsubscribe/{ada.token}", data={"List-Unsubscribe": "One-Click"})
    text = "\n".join(records.lines)
    assert "GET /manage/[redacted] 200" in text
    assert "POST /unsubscribe/[redacted] 200" in text
    assert ada.token not in text and signed not in text
    assert ada.token[:12] not in text


def test_uvicorn_access_records_are_redacted() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/feeds/{TOKEN}.atom?x=1", "1.1", 200),
        None,
    )
    assert RedactUvicornAccess().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /feeds/[redacted].atom HTTP/1.1" 200'


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_real_uvicorn_server(make_settings: SettingsFactory, records: Records) -> None:
    """Over a real socket: HEAD has no body, and even uvicorn's own access log hides tokens."""
    settings = make_settings()
    ada = seed(settings)
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
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            got = client.get(f"/feeds/{ada.token}.atom")
            head = client.head(f"/feeds/{ada.token}.atom")
            assert got.status_code == head.status_code == 200
            assert head.content == b"" and head.headers["etag"] == got.headers["etag"]
            assert head.headers["content-length"] == str(len(got.content))
            assert client.get(f"/manage/{ada.token}").status_code == 200
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()
    text = "\n".join(records.lines)
    assert '"HEAD /feeds/[redacted].atom HTTP/1.1" 200' in text  # uvicorn's line, redacted
    assert ada.token not in text


def test_every_web_template_compiles(make_settings: SettingsFactory) -> None:
    env: Environment = page_environment(make_settings())
    assert env.loader is not None
    names = [n for n in env.loader.list_templates() if n.startswith("web/") and n.endswith(".html")]
    assert len(names) >= 10
    for name in names:
        env.get_template(name)
