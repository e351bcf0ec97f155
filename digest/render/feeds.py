"""A subscriber's personal feed as Atom 1.0, RSS 2.0 (feedgen) and JSON Feed 1.1.

Output is a pure function of the :class:`~digest.render.views.FeedView`: every date is taken from
the view (feedgen would otherwise stamp "now"), entries keep the view's order, and entry ids
are tag URIs built from the paper key and the site host, so the same items always give the
same bytes and ETags stay stable. ``feed.self_url`` is the URL of the format being rendered.
feedgen is imported only here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from feedgen.feed import FeedGenerator
from markupsafe import Markup

from digest.render.display import (
    as_utc,
    authors_line,
    date_label,
    paper_entry_id,
    safe_url,
    single_line,
    upvotes_label,
)
from digest.render.views import FeedView, ItemView

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ENTRY_AUTHORS = 10  # papers with hundreds of authors would bloat every entry
LANGUAGE = "en"


def feed_entries(feed: FeedView) -> list[tuple[ItemView, datetime]]:
    """The entries in view order, each paper once (duplicate ids make an Atom feed invalid),
    with its date: when the paper reached the subscriber (else published, else the feed's
    date), minus one second per earlier entry with the same date.

    A digest's papers arrive together; without the offset readers that sort by date show
    them in arbitrary order, and the W3C validator warns about equal atom:updated values.
    """
    seen_keys: set[str] = set()
    seen_dates: dict[datetime, int] = {}
    entries = []
    for item in feed.items:
        if item.key in seen_keys:
            continue
        seen_keys.add(item.key)
        base = as_utc(item.delivered_at or item.published or feed.updated)
        earlier = seen_dates.get(base, 0)
        seen_dates[base] = earlier + 1
        entries.append((item, base - timedelta(seconds=earlier)))
    return entries


def _authors(item: ItemView) -> list[str]:
    return [name for name in (single_line(a) for a in item.authors) if name][:ENTRY_AUTHORS]


@functools.lru_cache(maxsize=512)
def entry_html(item: ItemView) -> str:
    """The entry body: why it matched, authors and date, the abstract, links. Escaped.

    Remembered for the last few hundred items: a run writes each subscriber's feed in three
    formats from the same items, and escaping them is most of a feed's rendering time."""
    # markupsafe escapes every argument of Markup.format; the markup itself is constant.
    parts: list[Markup] = []
    reason = single_line(item.reason)
    if reason:
        parts.append(Markup("<p><em>Why: {}</em></p>").format(reason))
    authors = authors_line(item.authors, shown=ENTRY_AUTHORS)
    byline = " · ".join(x for x in (authors, date_label(item.published)) if x)
    if byline:
        parts.append(Markup("<p>{}</p>").format(byline))
    abstract = single_line(item.abstract)
    if abstract:
        parts.append(Markup("<p>{}</p>").format(abstract))
    links: list[Markup] = []
    if item.upvotes:
        links.append(Markup("{}").format(upvotes_label(item.upvotes)))
    for label, url in (("Code", item.code_url), ("PDF", item.pdf_url)):
        href = safe_url(url)
        if href:
            links.append(Markup('<a href="{}">{}</a>').format(href, label))
    if links:
        parts.append(Markup("<p>{}</p>").format(Markup(" · ").join(links)))
    more, less = safe_url(item.more_url), safe_url(item.less_url)
    if more and less:  # the reader's feedback (a page with one button: readers may prefetch)
        parts.append(
            Markup(
                '<p><a href="{}">More like this</a> · <a href="{}">Less like this</a></p>'
            ).format(more, less)
        )
    if not parts:  # an Atom entry without a safe link still needs content
        parts.append(Markup("<p>No abstract available.</p>"))
    return str(Markup("\n").join(parts))


def _generator(feed: FeedView) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)  # RSS authors: dc:creator (no emails)
    fg.id(feed.feed_id)
    fg.title(single_line(feed.title))
    fg.subtitle(single_line(feed.subtitle) or single_line(feed.title))
    fg.author({"name": single_line(feed.author_name) or "paper-digest"})
    fg.link(href=feed.self_url, rel="self")
    fg.link(href=feed.site_url, rel="alternate")  # last link added is RSS <link>
    fg.language(LANGUAGE)
    fg.generator("paper-digest")  # no version: an upgrade must not change the bytes
    fg.updated(as_utc(feed.updated))
    for item, when in feed_entries(feed):
        fe = fg.add_entry(order="append")  # default "prepend" would reverse the view
        fe.id(paper_entry_id(item.key, feed.site_url))  # also the RSS guid, isPermaLink=false
        fe.title(single_line(item.title) or "(untitled)")
        url = safe_url(item.url)
        if url:
            fe.link(href=url)  # the one alternate link (feedgen 1.0 drops rel/type anyway)
        fe.updated(when)
        fe.published(when)
        authors = _authors(item)
        if authors:
            fe.author([{"name": name} for name in authors])
            fe.dc.dc_creator(authors)
        fe.content(entry_html(item), type="html")
    return fg


def render_atom(feed: FeedView) -> bytes:
    """Atom 1.0 document (UTF-8, with XML declaration)."""
    data: bytes = _generator(feed).atom_str(pretty=True, encoding="UTF-8")
    return data


def render_rss(feed: FeedView) -> bytes:
    """RSS 2.0 document (UTF-8, with XML declaration)."""
    data: bytes = _generator(feed).rss_str(pretty=True, encoding="UTF-8")
    return data


def _json_item(item: ItemView, feed: FeedView, when: datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": paper_entry_id(item.key, feed.site_url),
        "title": single_line(item.title) or "(untitled)",
        "content_html": entry_html(item),
        "date_published": when.isoformat(),
        "date_modified": when.isoformat(),
        "_paper_digest": {"key": item.key},  # JSON Feed extensions start with "_"
    }
    url = safe_url(item.url)
    if url:
        entry["url"] = url
    summary = single_line(item.reason)
    if summary:
        entry["summary"] = summary
    authors = _authors(item)
    if authors:
        entry["authors"] = [{"name": name} for name in authors]
    tags = [t for t in (single_line(m) for m in item.matched) if t]
    if tags:
        entry["tags"] = tags
    return entry


def render_json(feed: FeedView) -> bytes:
    """JSON Feed 1.1 document (UTF-8, sorted keys, trailing newline)."""
    document = {
        "version": JSON_FEED_VERSION,
        "title": single_line(feed.title),
        "description": single_line(feed.subtitle),
        "home_page_url": feed.site_url,
        "feed_url": feed.self_url,
        "language": LANGUAGE,
        "authors": [{"name": single_line(feed.author_name) or "paper-digest"}],
        "items": [_json_item(item, feed, when) for item, when in feed_entries(feed)],
    }
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, indent=2)
    return (text + "\n").encode("utf-8")


# The personal and public feeds' formats: URL suffix → renderer.
FEED_FORMATS: dict[str, Callable[[FeedView], bytes]] = {
    "atom": render_atom,
    "rss": render_rss,
    "json": render_json,
}
