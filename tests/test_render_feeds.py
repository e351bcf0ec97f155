"""Atom, RSS and JSON Feed output: golden files, determinism, structure, escaping."""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from render_fixtures import (
    BARE,
    DELIVERED,
    GOLDEN_DIR,
    HOSTILE,
    ITEMS,
    LINKS,
    NORMAL,
    check_golden,
    feed_view,
)

from digest.render.display import paper_entry_id
from digest.render.feed_state import RENDERING
from digest.render.feeds import feed_entries, render_atom, render_json, render_rss
from digest.render.views import FeedView

ATOM = "{http://www.w3.org/2005/Atom}"
IDS = [paper_entry_id(item.key, LINKS.site_url) for item in ITEMS]
# RFC 4151 tag URI: tag:<authority>,<date>:<specific> with URI characters only.
TAG_URI = re.compile(r"tag:[a-z0-9.\-]+,\d{4}(-\d{2}(-\d{2})?)?:[0-9A-Za-z;/?:@&=+$.\-_!~*'()%,]*")


def test_golden_feeds() -> None:
    check_golden("feed.atom", render_atom(feed_view()))
    check_golden("feed.rss", render_rss(feed_view(LINKS.rss_url)))
    check_golden("feed.json", render_json(feed_view(LINKS.json_url)))


@pytest.mark.parametrize("render", [render_atom, render_rss, render_json])
def test_same_view_gives_same_bytes(render: Callable[[FeedView], bytes]) -> None:
    first = render(feed_view())
    assert render(feed_view()) == first
    # Built from scratch again (fresh objects, later wall-clock time): still identical.
    rebuilt = feed_view(items=tuple(replace(item) for item in ITEMS))
    assert render(rebuilt) == first


def test_entry_ids_are_stable_tag_uris() -> None:
    assert IDS[0] == "tag:digest.example.org,2024:paper/arxiv:2410.17243"
    assert IDS[1] == "tag:digest.example.org,2024:paper/doi:10.1000/x%3Cy%3E&z"
    for entry_id in IDS:
        assert TAG_URI.fullmatch(entry_id)
    # The id depends on the key and the host only, never on the run or the subscriber.
    assert paper_entry_id("arxiv:1", "https://Digest.Example.org/x/") == (
        "tag:digest.example.org,2024:paper/arxiv:1"
    )


def test_atom_structure() -> None:
    root = ET.fromstring(render_atom(feed_view()))
    for name in ("id", "title", "updated"):
        assert len(root.findall(f"{ATOM}{name}")) == 1
    assert root.findtext(f"{ATOM}updated") == "2026-11-23T08:00:00+00:00"
    assert root.find(f"{ATOM}author/{ATOM}name") is not None
    self_links = [link for link in root.findall(f"{ATOM}link") if link.get("rel") == "self"]
    assert [link.get("href") for link in self_links] == [LINKS.atom_url]
    entries = root.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id") for e in entries] == IDS
    for entry in entries:
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{ATOM}{name}")) == 1
        links = entry.findall(f"{ATOM}link")
        assert len(links) == 1
        assert links[0].get("rel", "alternate") == "alternate"
        content = entry.find(f"{ATOM}content")
        assert content is not None
        assert content.get("type") == "html"
    names = [a.findtext(f"{ATOM}name") for a in entries[1].findall(f"{ATOM}author")]
    assert names == ["Zoë Ångström", "Jürgen Müller", "李雷"]
    assert entries[2].find(f"{ATOM}author") is None  # no authors known: the feed's applies


def test_rss_structure() -> None:
    root = ET.fromstring(render_rss(feed_view(LINKS.rss_url)))
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("title") == "Paper digest for Ada Lovelace-Byron"
    assert channel.findtext("link") == LINKS.site_url
    assert channel.findtext("description") == "New papers matching your interests"
    self_link = channel.find(f"{ATOM}link")
    assert self_link is not None
    assert self_link.get("href") == LINKS.rss_url
    assert self_link.get("rel") == "self"
    guids = channel.findall("item/guid")
    assert [g.text for g in guids] == IDS
    assert {g.get("isPermaLink") for g in guids} == {"false"}
    creators = channel.findall("item/{http://purl.org/dc/elements/1.1/}creator")
    assert "Zesen Cheng" in [c.text for c in creators]


def test_feedparser_reads_them_back() -> None:
    for data in (render_atom(feed_view()), render_rss(feed_view(LINKS.rss_url))):
        parsed = feedparser.parse(data)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert [entry.id for entry in parsed.entries] == IDS
        assert [entry.link for entry in parsed.entries] == [i.url for i in ITEMS]
        hostile = parsed.entries[1]
        assert hostile.title == (
            'Attention <script>alert("x")</script> is Bcc: victim@example.com all & you "need"'
        )
        assert "&lt;b&gt;bold&lt;/b&gt;" in hostile.summary  # abstract text stays text
        assert "javascript:" not in data.decode()


def test_hostile_text_is_escaped_in_xml() -> None:
    for data in (render_atom(feed_view()), render_rss(feed_view(LINKS.rss_url))):
        text = data.decode()
        assert "<script>" not in text
        assert "&lt;script&gt;" in text
        assert "\r" not in text
        assert "Bcc: victim@example.com all" in text  # CR/LF folded into the title line


def test_entry_dates_are_distinct_and_ordered() -> None:
    dates = [when for _, when in feed_entries(feed_view())]
    assert dates[0] == DELIVERED
    assert dates[1] == DELIVERED - timedelta(days=7)
    assert dates[2] == DELIVERED - timedelta(days=7, seconds=1)  # same delivery: 1 s apart
    naive = replace(BARE, delivered_at=None, published=datetime(2026, 1, 2))
    undated = replace(BARE, key="title:ffff", delivered_at=None)
    dates = [when for _, when in feed_entries(feed_view(items=(naive, undated)))]
    assert dates == [datetime(2026, 1, 2, tzinfo=UTC), DELIVERED]


def test_a_paper_appears_once() -> None:
    items = (NORMAL, HOSTILE, replace(NORMAL, title="Same key again"))
    assert [item for item, _ in feed_entries(feed_view(items=items))] == [NORMAL, HOSTILE]
    parsed = feedparser.parse(render_atom(feed_view(items=items)))
    assert [entry.id for entry in parsed.entries] == IDS[:2]


def test_entry_without_safe_link_still_renders() -> None:
    item = replace(
        NORMAL,
        url="javascript:alert(1)",
        abstract="",
        reason="",
        authors=(),
        upvotes=None,
        code_url=None,
        pdf_url=None,
        published=None,
        more_url=None,
        less_url=None,
    )
    root = ET.fromstring(render_atom(feed_view(items=(item,))))
    entry = root.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.find(f"{ATOM}link") is None
    assert entry.findtext(f"{ATOM}content") == "<p>No abstract available.</p>"


def test_empty_feed() -> None:
    parsed = feedparser.parse(render_atom(feed_view(items=())))
    assert not parsed.bozo
    assert parsed.entries == []
    assert json.loads(render_json(feed_view(items=())))["items"] == []


def test_json_feed() -> None:
    data = render_json(feed_view(LINKS.json_url))
    assert data.endswith(b"}\n")
    document = json.loads(data)
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert document["title"] == "Paper digest for Ada Lovelace-Byron"
    assert document["feed_url"] == LINKS.json_url
    assert document["home_page_url"] == LINKS.site_url
    items = document["items"]
    assert [item["id"] for item in items] == IDS
    assert all(item["content_html"] for item in items)
    assert items[0]["url"] == NORMAL.url
    assert items[0]["date_published"] == "2026-11-23T08:00:00+00:00"
    assert items[0]["tags"] == ["contrastive learning"]
    assert items[0]["_paper_digest"] == {"key": NORMAL.key}
    assert items[1]["authors"] == [{"name": n} for n in HOSTILE.authors]
    assert "<script>" not in items[1]["content_html"]
    assert items[1]["title"].startswith("Attention <script>")  # JSON title is plain text
    assert "李雷" in data.decode()  # ensure_ascii=False keeps it readable
    assert "authors" not in items[2]


def test_characters_xml_cannot_hold_are_dropped() -> None:
    item = replace(
        NORMAL,
        title="Nul\x00 vertical\x0b tab \ufffe bad\ud800 end",
        abstract="Bell\x07 and DEL\x7f",
        authors=("Esc\x1bape",),
    )
    for render in (render_atom, render_rss, render_json):
        data = render(feed_view(items=(item,)))
        assert "Nul vertical tab bad end" in data.decode()
    parsed = feedparser.parse(render_atom(feed_view(items=(item,))))
    assert not parsed.bozo
    assert parsed.entries[0].title == "Nul vertical tab bad end"


def test_long_author_lists_are_cut() -> None:
    item = replace(NORMAL, authors=tuple(f"Author {n}" for n in range(300)))
    root = ET.fromstring(render_atom(feed_view(items=(item,))))
    entry = root.find(f"{ATOM}entry")
    assert entry is not None
    assert len(entry.findall(f"{ATOM}author")) == 10
    assert "Author 9 et al." in (entry.findtext(f"{ATOM}content") or "")


# The golden feeds' bytes for each value of feed_state.RENDERING. Feed ETags are derived from
# the inputs, not the bytes: output that changes for the same inputs must change the ETags
# too, so new golden feeds need a new RENDERING (and their hash recorded here).
GOLDEN_BY_RENDERING = {
    "1": "c70309c373af8e147adeeb3a5fef771dbc4dbeb5df09402593be3f8efe32b2e7",
    "2": "e3069c38c3dcf6efe303a73402b89a95eb24df3a9e850d3abaea551d59514cdf",
}


def test_rendering_version_moves_with_the_golden_feeds() -> None:
    data = b"".join((GOLDEN_DIR / f"feed.{fmt}").read_bytes() for fmt in ("atom", "rss", "json"))
    assert GOLDEN_BY_RENDERING.get(RENDERING) == hashlib.sha256(data).hexdigest(), (
        "the feed renderers' output changed: bump digest.render.feed_state.RENDERING"
        " and record the golden feeds' hash in GOLDEN_BY_RENDERING"
    )
