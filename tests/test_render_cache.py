"""The render caches change nothing: many random digests, rendered cold and warm, match."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from render_fixtures import HOSTILE, LINKS, NORMAL, digest_view, long_item

from digest.render import display, email
from digest.render.email import EmailRenderer, RenderedEmail
from digest.render.views import DigestView, ItemView

WORDS = ["model", "&", "<b>", "Zoë", "—", "=", "diffusion", "x" * 90, "\r\n", "😀", "  ", "a.b"]


def random_item(rng: random.Random, n: int) -> ItemView:
    def text(k: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, k)))

    return ItemView(
        key=f"arxiv:2411.{n:05d}",
        title=text(12),
        url=rng.choice(["https://arxiv.org/abs/2411.00001", "javascript:x()", "", "http://a b"]),
        abstract=text(120),
        authors=tuple(text(3) for _ in range(rng.randint(0, 7))),
        published=rng.choice([None, datetime(2026, 11, 20, 23, 30, tzinfo=UTC)]),
        upvotes=rng.choice([None, 0, 1, 42]),
        code_url=rng.choice([None, "https://github.com/a/b", "ftp://x"]),
        pdf_url=rng.choice([None, "https://arxiv.org/pdf/2411.00001"]),
        reason=text(6),
        matched=tuple(text(2) for _ in range(rng.randint(0, 3))),
    )


def random_views(count: int, seed: int) -> list[DigestView]:
    rng = random.Random(seed)
    pool = [random_item(rng, n) for n in range(40)] + [NORMAL, HOSTILE, long_item(1)]
    # Twins that differ in one display field: a cache keyed on too little would mix them up.
    changes = {
        "title": "Another title",
        "url": "https://example.org/other",
        "abstract": "A different abstract.",
        "authors": ("Someone Else",),
        "code_url": "https://github.com/other/repo",
        "pdf_url": "https://example.org/other.pdf",
    }
    pool += [replace(NORMAL, **{field: value}) for field, value in changes.items()]
    views = []
    for n in range(count):
        items = tuple(
            replace(rng.choice(pool), reason=rng.choice(["", "matched “x” (title)", "why\nnot"]))
            for _ in range(rng.randint(0, 8))
        )
        views.append(
            replace(
                digest_view(items),
                key=f"{n}:weekly:2026-W48",
                subscriber_name=rng.choice([None, "Ada", "Zoë Ångström"]),
                interests=tuple(rng.choice(WORDS) for _ in range(rng.randint(0, 3))),
                links=replace(LINKS, manage_url=f"{LINKS.manage_url}{n}"),
            )
        )
    return views


def cold() -> None:
    display.paper_display.cache_clear()
    email.clear_filter_caches()


def test_cold_and_warm_renders_are_identical() -> None:
    renderer = EmailRenderer()
    views = random_views(300, seed=10)
    first: list[RenderedEmail] = []
    for view in views:
        cold()
        first.append(renderer.render(view))
    warm = [renderer.render(view) for view in views]  # now mostly cache hits
    again = [renderer.render(view) for view in reversed(views)][::-1]
    assert warm == first
    assert again == first
    assert display.paper_display.cache_info().hits > 0


def test_date_is_not_taken_from_the_cache() -> None:
    # Equal instants in two zones are equal datetimes, but their day differs.
    evening = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)
    tokyo = evening.astimezone(timezone(timedelta(hours=9)))
    renderer = EmailRenderer()
    utc_text = renderer.render(digest_view((replace(NORMAL, published=evening),))).text
    tokyo_text = renderer.render(digest_view((replace(NORMAL, published=tokyo),))).text
    assert "published 20 Nov 2026" in utc_text and "21 Nov 2026" not in utc_text
    assert "published 21 Nov 2026" in tokyo_text and "20 Nov 2026" not in tokyo_text


def test_cache_is_bounded() -> None:
    assert display.paper_display.cache_info().maxsize == display.PAPER_CACHE_SIZE
