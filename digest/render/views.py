"""Plain data handed to the renderers: a digest as the reader sees it.

The pipeline builds these from store rows; renderers (email, feeds, preview) are pure
functions of them, so they are easy to test against golden files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.subscribers.links import LinksView


@dataclass(frozen=True, slots=True)
class ItemView:
    """One paper in a digest or feed."""

    key: str  # canonical key, also the feed entry id's stable part
    title: str
    url: str | None  # landing page (HF paper page, entry link, arXiv abs, DOI); None: none known
    abstract: str = ""
    authors: tuple[str, ...] = ()
    published: datetime | None = None  # the paper's own date (arXiv v1, the entry's date)
    listed: datetime | None = None  # when a listing featured it (Hugging Face Daily Papers)
    upvotes: int | None = None
    code_url: str | None = None
    pdf_url: str | None = None
    reason: str = ""  # why it matched, e.g. 'matched "diffusion" (title, abstract)'
    matched: tuple[str, ...] = ()  # the interests that matched
    score: float = 0.0
    delivered_at: datetime | None = None  # when it reached the subscriber (feed entry date)
    # Signed "more like this" / "less like this" pages for the reader (subscribers.links).
    more_url: str | None = None
    less_url: str | None = None


@dataclass(frozen=True, slots=True)
class DigestView:
    """One subscriber's digest for one period."""

    key: str  # the digest key, e.g. "42:weekly:2026-W48"; Message-ID derives from it
    subscriber_email: str
    subscriber_name: str | None
    period_label: str  # e.g. "week of 23 Nov 2026" or "Monday 23 Nov 2026"
    generated_at: datetime
    items: tuple[ItemView, ...]
    links: LinksView
    interests: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.items


@dataclass(frozen=True, slots=True)
class FeedView:
    """A subscriber's personal feed: delivered items, most recent first."""

    feed_id: str  # stable id of the feed (e.g. "urn:paper-digest:feed:<subscriber id>")
    title: str
    subtitle: str
    self_url: str  # this feed's own URL (format-specific)
    site_url: str
    author_name: str
    items: tuple[ItemView, ...]
    updated: datetime  # deterministic: the newest item's delivered_at, else a fixed epoch
