"""HTML to text on hostile fields: ours (one linear pass) beside the standard library's
HTMLParser (what ``digest.parsers.common.html_to_text`` used before, kept here as the
baseline), and a whole Atom listing through feedparser with and without its HTML sanitizer.

    .venv/bin/python bench/html_text.py                  # sizes 100 KB, 200 KB, 1 MB
    .venv/bin/python bench/html_text.py --baseline-max 200000 --repeat 3

The baseline is quadratic on these inputs (minutes at 1 MB), so it only runs up to
``--baseline-max`` characters. Results go in docs/benchmarks.md ("HTML to text").
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import time
from collections.abc import Callable
from html.parser import HTMLParser

import feedparser

from digest.parsers import parse_listing
from digest.parsers.common import html_to_text, plain_text

PATTERNS = {
    "<a": "<a",
    "<a x": "<a x",
    "<!--": "<!--",
    '<a b="': '<a b="',
    "<p>x": "<p>x",
}
SIZES = (100_000, 200_000, 1_000_000)


class _Baseline(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def baseline_html_to_text(value: str) -> str:
    parser = _Baseline()
    parser.feed(value)
    parser.close()
    return plain_text("".join(parser.parts))


def _atom(summary: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>t</title><id>urn:t</id><updated>2024-01-01T00:00:00Z</updated><entry>"
        "<title>Big</title><id>urn:e</id><updated>2024-01-01T00:00:00Z</updated>"
        f'<summary type="html">{summary}</summary></entry></feed>'
    ).encode()


def _seconds(function: Callable[[], object], repeat: int) -> str:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    low, high = min(runs), max(runs)
    return f"{statistics.median(runs):.3f} s" + (f" ({low:.3f}–{high:.3f})" if repeat > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline-max", type=int, default=200_000)
    args = parser.parse_args()
    print(f"# {platform.python_version()} on {platform.machine()}, {platform.platform()}")
    print("| field | size | ours | HTMLParser baseline |")
    print("|---|---|---|---|")
    for label, unit in PATTERNS.items():
        for size in SIZES:
            text = unit * (size // len(unit))
            ours = _seconds(lambda t=text: html_to_text(t), args.repeat)  # type: ignore[misc]
            base = (
                _seconds(lambda t=text: baseline_html_to_text(t), 1)  # type: ignore[misc]
                if size <= args.baseline_max
                else "not run"
            )
            print(f"| `{label}` × N | {size:,} | {ours} | {base} |")
    print()
    print("| Atom summary (type=html) | size | parse_listing | feedparser, sanitizer on |")
    print("|---|---|---|---|")
    for escaped in ("&lt;a", "&lt;!--"):
        for size in SIZES:
            data = _atom(escaped * (size // len(escaped)))
            ours = _seconds(lambda d=data: parse_listing(d), args.repeat)  # type: ignore[misc]
            sanitized = (
                _seconds(lambda d=data: feedparser.parse(io.BytesIO(d)), 1)  # type: ignore[misc]
                if size <= args.baseline_max
                else "not run"
            )
            print(f"| `{escaped}` × N | {len(data):,} B | {ours} | {sanitized} |")


if __name__ == "__main__":
    main()
