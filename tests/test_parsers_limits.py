"""Megabyte fields: HTML to text stays linear, and what reaches the store is capped.

HTMLParser (and feedparser's HTML sanitizer) took 87 s for a 1 MB summary of ``&lt;a``; a
10 MB title made a 41.6 MB email. The time bounds here are guards against a quadratic
blow-up, generous enough for a loaded machine (each case takes well under a second; the
measured numbers are in docs/benchmarks.md, from ``bench/html_text.py``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import Cli
from sqlalchemy import select

from digest.config.settings import Settings
from digest.parsers import parse_listing
from digest.parsers.common import html_to_text, plain_text
from digest.parsers.limits import (
    ABSTRACT_CHARS,
    AUTHOR_CHARS,
    AUTHORS,
    TERMS,
    TITLE_CHARS,
    bound_record,
    cut,
)
from digest.store import db
from digest.store.models import Run
from digest.store.records import PaperRecord

MEGABYTE = 1_000_000
GENEROUS_SECONDS = 5.0  # quadratic code needs minutes for these inputs

# Markup shapes that made a tag scanner rescan the rest of the text from every "<".
PATTERNS = ["<a", "<a x", '<a b="', "<!--", "&#", "<p>x", "</", "<![CDATA[", "<?"]


def _timed(function: object, *args: object) -> tuple[object, float]:
    started = time.perf_counter()
    result = function(*args)  # type: ignore[operator]  # any callable
    return result, time.perf_counter() - started


@pytest.mark.parametrize("pattern", PATTERNS)
def test_html_to_text_of_a_megabyte_is_linear(pattern: str) -> None:
    text = pattern * (MEGABYTE // len(pattern))
    for convert in (html_to_text, plain_text):
        result, seconds = _timed(convert, text)
        assert isinstance(result, str) and "\n" not in result
        assert seconds < GENEROUS_SECONDS, f"{convert.__name__}({pattern!r} x N): {seconds:.1f} s"


def test_html_to_text_still_reads_html() -> None:
    html = (
        '<p class="x>y">H<sub>2</sub>O &amp; CO<sub>2</sub></p><!-- gone --><br/>'
        "<script>alert(1)</script><svg><g>drawn</g></svg>next &#233;&eacute; &#1234567890; done"
    )
    assert html_to_text(html) == "H2O & CO2 next éé \ufffd90; done"  # 8 digits at most
    assert html_to_text("a <!-- never closed <b>bold</b>") == "a <!-- never closed bold"
    assert html_to_text("&lt;script&gt;x&lt;/script&gt; &amp;lt;b&amp;gt;") == "x &lt;b&gt;"


def _atom(summary: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>t</title><id>urn:t</id><updated>2024-01-01T00:00:00Z</updated><entry>"
        "<title>Big summary</title><id>urn:e</id><updated>2024-01-01T00:00:00Z</updated>"
        f'<link href="https://example.org/e"/><summary type="html">{summary}</summary>'
        "</entry></feed>"
    ).encode()


@pytest.mark.parametrize("escaped", ["&lt;a", "&lt;!--", "&lt;a b=&quot;", "&amp;#"])
def test_a_feed_with_a_megabyte_summary_parses_fast(escaped: str) -> None:
    data = _atom(escaped * (MEGABYTE // len(escaped)))
    listing, seconds = _timed(parse_listing, data)
    assert seconds < GENEROUS_SECONDS, f"{escaped!r} x N: {seconds:.1f} s"
    (record,) = listing.records  # type: ignore[attr-defined]  # a ParsedListing
    assert len(record.abstract) <= ABSTRACT_CHARS


def test_cut_at_a_word_boundary() -> None:
    assert cut("short", 10) == "short"
    assert cut("one two three four", 12) == "one two…"
    assert cut("x" * 30, 10) == "x" * 9 + "…"  # one long word is cut inside it
    assert cut("alpha beta, gamma", 13) == "alpha beta…"


def test_records_are_bounded() -> None:
    record = PaperRecord(
        title="word " * 2_000_000,
        abstract="sentence. " * 100_000,
        authors=(*(f"Author {n}" for n in range(1000)), "N" * 500),
        keywords=tuple(f"k{n}" for n in range(100)),
        doi="10.1000/" + "x" * 300,
        upvotes=2**40,
        url="https://example.org/" + "p" * 3000,
        external_id="id\ud800",
    )
    bounded, capped = bound_record(record)
    assert len(bounded.title) <= TITLE_CHARS and bounded.title.endswith("word…")
    assert len(bounded.abstract) <= ABSTRACT_CHARS and bounded.abstract.endswith("sentence…")
    assert len(bounded.authors) == AUTHORS and bounded.authors[-1] == "Author 199"
    assert len(bounded.keywords) == TERMS
    assert bounded.doi is None and bounded.upvotes is None and bounded.url is None
    assert bounded.external_id == "id\ufffd"
    assert sorted(capped) == ["abstract", "authors", "doi", "keywords", "title", "upvotes", "url"]
    alone, capped = bound_record(PaperRecord(title="t", authors=("M" * 500,)))
    assert len(alone.authors[0]) == AUTHOR_CHARS and capped == ["authors"]
    same = PaperRecord(title="A normal paper", abstract="Short.", authors=("Ada",))
    assert bound_record(same) == (same, [])


def test_import_caps_fields_and_counts_them(cli: Cli, settings: Settings, tmp_path: Path) -> None:
    listing = tmp_path / "huge.json"
    papers = [
        {
            "paper": {
                "id": f"2410.{17300 + n:05d}",
                "title": "Enormous title " * 700_000 if n == 0 else f"Paper {n}",
                "summary": "Long abstract words " * 50_000 if n < 2 else "Short.",
                "authors": [{"name": f"Author {k}"} for k in range(5000 if n == 0 else 3)],
            }
        }
        for n in range(3)
    ]
    listing.write_text(json.dumps(papers))
    assert listing.stat().st_size > 10 * MEGABYTE
    report = json.loads(cli("import", str(listing), "--json").stdout)
    assert report["files"][0]["capped"] == {"abstract": 2, "authors": 1, "title": 1}
    with db.transaction(settings) as session:
        run = session.execute(select(Run)).scalar_one()
        assert run.details["capped"] == {"abstract": 2, "authors": 1, "title": 1}
    status = cli.json("status")
    assert status["papers"] == 3
    assert status["runs"][0]["details"]["capped"] == {"abstract": 2, "authors": 1, "title": 1}
