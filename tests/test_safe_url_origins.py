"""safe_url's shortcut for URLs under an origin it already accepted gives what urlsplit's
path gives, hostile suffixes and look-alike origins included."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from digest.render import display
from digest.render.display import _URL_UNSAFE, safe_url


def slow(url: str) -> str | None:
    """safe_url without the shortcut (its definition before the origin cache)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return None if _URL_UNSAFE.search(url) else url


SUFFIXES = [
    "feedback/abc.def_-/up",
    "",
    "a b",
    "a\tb",
    "x\n",
    'q"',
    "q'",
    "<script>",
    "a\\b",
    "?q=1#frag",
    "@evil.example/",
    "//evil.example/",
    "%0d%0a",
    "\x00",
    "é",
]


@pytest.mark.parametrize("origin", ["https://digest.example.org/", "HTTP://Digest.Example:8080/"])
def test_urls_under_an_accepted_origin(origin: str) -> None:
    assert safe_url(origin + "first") == origin + "first"  # the origin is remembered now
    assert origin in display._CHECKED_ORIGINS
    for suffix in SUFFIXES:
        for url in (origin + suffix, " " + origin + suffix, origin + suffix + " "):
            assert safe_url(url) == slow(url), url


def test_origins_that_are_not_remembered() -> None:
    for url in (
        "https://user@host.example/a",  # userinfo: not a plain origin
        "https://[::1]/a",
        "javascript://x.example/a",
        "https:///a",
        "https://x.example",
    ):
        safe_url(url)
        assert url[: url.find("/", 8) + 1] not in display._CHECKED_ORIGINS
        assert safe_url(url) == slow(url)
