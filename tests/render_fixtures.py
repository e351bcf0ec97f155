"""Fixed render inputs for the email and feed golden files (and for feed validation by hand).

Three items: an ordinary arXiv paper with long author list, upvotes and code; a hostile one
(``<script>``, CR/LF, a ``javascript:`` code link, non-ASCII authors); and a bare one with no
authors, date, upvotes or abstract. Nothing here depends on the clock.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from digest.render.display import subscriber_feed_id
from digest.render.views import DigestView, FeedView, ItemView
from digest.subscribers.links import LinksView

BASE = "https://digest.example.org"
TOKEN = "tok_3q2VnY8JxF0aLmZ"
DELIVERED = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)

# A feedback link's signed value as VoteSigner makes them (subscriber 42, arxiv:2410.17243).
SIGNED = (
    "WzQyLCJhN2MzZjE5YjBkMmU0ZjVhIiwiYXJ4aXY6MjQxMC4xNzI0MyJd"
    ".p3Q9rZ0uYb7cN2fVxW1kLmS8tHqJdEaGoRiUyTnBvCw"
)

LINKS = LinksView(
    manage_url=f"{BASE}/manage/{TOKEN}",
    unsubscribe_url=f"{BASE}/unsubscribe/{TOKEN}",
    atom_url=f"{BASE}/feeds/{TOKEN}.atom",
    rss_url=f"{BASE}/feeds/{TOKEN}.rss",
    json_url=f"{BASE}/feeds/{TOKEN}.json",
    site_url=BASE,
)

ABSTRACT = (
    "Contrastive loss is a powerful approach for representation learning, where larger "
    "batch sizes enhance performance by providing more negative samples to better "
    "distinguish between similar and dissimilar data. However, scaling batch sizes is "
    "constrained by the quadratic growth in GPU memory consumption, primarily due to the "
    "full instantiation of the similarity matrix. To address this, we propose a tile-based "
    "computation strategy that partitions the contrastive loss calculation into arbitrary "
    "small blocks, avoiding full materialization of the similarity matrix."
)

NORMAL = ItemView(
    key="arxiv:2410.17243",
    title="Breaking the Memory Barrier: Near Infinite Batch Size Scaling for Contrastive Loss",
    url="https://arxiv.org/abs/2410.17243",
    abstract=ABSTRACT,
    authors=("Zesen Cheng", "Hang Zhang", "Kehan Li", "Sicong Leng", "Zhiqiang Hu"),
    published=datetime(2024, 10, 22, tzinfo=UTC),
    upvotes=89,
    code_url="https://github.com/DAMO-NLP-SG/Inf-CLIP",
    pdf_url="https://arxiv.org/pdf/2410.17243",
    reason='matched "contrastive learning" (title, abstract)',
    matched=("contrastive learning",),
    score=12.5,
    delivered_at=DELIVERED,
    more_url=f"{BASE}/feedback/{SIGNED}/up",
    less_url=f"{BASE}/feedback/{SIGNED}/down",
)

HOSTILE = ItemView(
    key="doi:10.1000/x<y>&z",
    title='Attention <script>alert("x")</script> is\r\nBcc: victim@example.com\r\n'
    ' all & you "need"',
    url="https://example.org/paper?id=1&v=2",
    abstract="We study <b>bold</b> claims & 'quotes'.\r\nSecond line\u2028third.",
    authors=("Zoë Ångström", "Jürgen Müller", "李雷"),
    published=datetime(2026, 11, 20, 12, 30, tzinfo=UTC),
    upvotes=1,
    code_url="javascript:alert(1)",
    reason='matched "attention" (title)\nInjected: line',
    matched=("attention",),
    score=3.0,
    delivered_at=DELIVERED - timedelta(days=7),
    more_url=f"{BASE}/feedback/a&b=c/up",  # escaped wherever it is shown
    less_url=f"{BASE}/feedback/a&b=c/down",
)

BARE = ItemView(
    key="title:0123456789abcdef",
    title="A paper with nothing but a title",
    url="https://example.org/papers/bare",
    delivered_at=DELIVERED - timedelta(days=7),
)

ITEMS = (NORMAL, HOSTILE, BARE)

# Two more for the email's golden files only (the feeds' keep ITEMS): a Daily Papers entry
# known only by the day it was listed, and a paper from a saved page, which names no link.
LISTED = ItemView(
    key="arxiv:2611.01234",
    title="Listed Before Anyone Knew Its Date",
    url="https://huggingface.co/papers/2611.01234",
    abstract="Only the day Hugging Face listed it is known.",
    authors=("Grace Hopper",),
    listed=datetime(2026, 11, 22, 9, 15, tzinfo=UTC),
    upvotes=3,
)
SAVED_PAGE = ItemView(
    key="title:fedcba9876543210",
    title="A Paper From a Saved Listing Page",
    url=None,
    abstract="Saved pages carry titles and abstracts but no links and no author names.",
)
EMAIL_ITEMS = (*ITEMS, LISTED, SAVED_PAGE)


def digest_view(items: tuple[ItemView, ...] = ITEMS) -> DigestView:
    """The golden digest (or an empty one with ``items=()``)."""
    return DigestView(
        key="42:weekly:2026-W48",
        subscriber_email="ada@example.org",
        subscriber_name="Ada Lovelace-Byron",
        period_label="week of 23 Nov 2026",
        generated_at=DELIVERED,
        items=items,
        links=LINKS,
        interests=("contrastive learning", "attention"),
    )


def feed_view(self_url: str = LINKS.atom_url, items: tuple[ItemView, ...] = ITEMS) -> FeedView:
    """The golden feed; pass the RSS or JSON URL as ``self_url`` for those formats."""
    return FeedView(
        feed_id=subscriber_feed_id(TOKEN, BASE),  # opaque: neither the row id nor the token
        title="Paper digest for Ada Lovelace-Byron",
        subtitle="New papers matching your interests",
        self_url=self_url,
        site_url=BASE,
        author_name="Paper digest",
        items=items,
        updated=DELIVERED,
    )


def long_item(n: int) -> ItemView:
    """A realistic worst-case item for the size budget: long title, many authors, long text."""
    return ItemView(
        key=f"arxiv:2411.{10000 + n:05d}",
        title=f"Paper {n}: " + "Scaling Laws for Sparse Mixture-of-Experts Language Models " * 2,
        url=f"https://arxiv.org/abs/2411.{10000 + n:05d}",
        abstract=ABSTRACT * 3,
        authors=tuple(f"Author Number{k} Surname" for k in range(12)),
        published=datetime(2026, 11, 20, tzinfo=UTC),
        upvotes=120 + n,
        code_url=f"https://github.com/example-org/project-{n}-with-a-long-repository-name",
        pdf_url=f"https://arxiv.org/pdf/2411.{10000 + n:05d}",
        reason='matched "mixture of experts" (title, abstract), "scaling laws" (title), '
        '"sparse models" (abstract)',
        delivered_at=DELIVERED,
        more_url=f"{BASE}/feedback/{SIGNED}/up",
        less_url=f"{BASE}/feedback/{SIGNED}/down",
    )


GOLDEN_DIR = Path(__file__).parent / "data" / "golden"


def check_golden(name: str, actual: bytes) -> None:
    """Compare ``actual`` with ``tests/data/golden/<name>``; ``UPDATE_GOLDEN=1`` rewrites it."""
    path = GOLDEN_DIR / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(actual)
        return
    assert path.is_file(), f"missing golden file {path}: run with UPDATE_GOLDEN=1"
    expected = path.read_bytes()
    assert actual == expected, f"{name} differs from its golden file (UPDATE_GOLDEN=1 to accept)"
