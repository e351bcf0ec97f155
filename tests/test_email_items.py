"""What an email says about each paper, through the real pipeline: authors, a date that says
what it is, an honest link (never an invented search), a footer without profile syntax, a
text part readable at 72 columns, and an HTML part under Gmail's clipping size.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from render_fixtures import EMAIL_ITEMS, digest_view, long_item

from digest.config.resources import sample_dir
from digest.config.settings import Settings
from digest.parsers.limits import ABSTRACT_CHARS, SHORT_CHARS, TITLE_CHARS
from digest.render.assemble import paper_url
from digest.render.display import interest_label
from digest.render.email import HTML_BUDGET, EmailRenderer
from digest.render.views import ItemView
from digest.runner import run_digests
from digest.sources.imports import import_files
from digest.store import db
from digest.store.models import Paper
from digest.subscribers.library import ProfileSpec, SubscriberFields, add_subscriber

LISTINGS = Path(__file__).parent / "data" / "listings"
IMPORTED = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
RUN_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
URL_LINE = re.compile(r"^\s*(?:Code: |PDF: |More like this: |Less like this: )?https?://\S+$")


def _paper(**fields: object) -> Paper:
    now = datetime(2026, 11, 23, tzinfo=UTC)
    values: dict[str, object] = {
        "key": "k",
        "title": "A title",
        "first_source": "t",
        "first_seen_at": now,
        "updated_at": now,
    }
    return Paper(**{**values, **fields})


def test_paper_url_prefers_real_links_and_never_guesses() -> None:
    page = "https://huggingface.co/papers/2410.17243"
    assert paper_url(_paper(url=page, arxiv_id="2410.17243")) == page
    assert paper_url(_paper(arxiv_id="2410.17243")) == "https://arxiv.org/abs/2410.17243"
    assert paper_url(_paper(doi="10.1000/xyz<1>")) == "https://doi.org/10.1000/xyz%3C1%3E"
    assert paper_url(_paper(title="Only a title from a saved page")) is None


def test_interest_labels_drop_the_profile_syntax() -> None:
    assert interest_label("robot learning^2") == "robot learning"
    assert interest_label('"RL: exploration"^0.5') == "RL: exploration"
    assert interest_label("offline RL") == "offline RL"
    assert interest_label("x^ 1.5\n") == "x"


def _delivered(settings: Settings) -> EmailMessage:
    (path,) = sorted(settings.resolved_outbox_dir.glob("*.eml"))
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _part(message: EmailMessage, kind: str) -> str:
    body = message.get_body((kind,))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")  # as sent: CRLF line ends


@pytest.fixture
def delivered(backend: str, make_settings: object, tmp_path: Path) -> EmailMessage:
    """One real digest (saved pages + Hugging Face JSON) delivered to the outbox."""
    settings: Settings = make_settings(delivery="outbox", outbox_dir=tmp_path / "outbox")  # type: ignore[operator]  # the conftest factory
    pages = sorted(sample_dir().glob("*.txt.gz"))
    import_files(settings, [*pages, LISTINGS / "hf" / "daily_papers.json"], now=IMPORTED)
    with db.transaction(settings) as session:
        add_subscriber(
            session,
            email="ada@example.org",
            profile=ProfileSpec(keywords=["robot learning^2", "contrastive loss", "unlearning"]),
            fields=SubscriberFields(frequency="daily", hour=7, timezone="UTC"),
            settings=settings,
            now=IMPORTED - timedelta(days=1),
        )
    assert run_digests(settings, now=RUN_AT).sent == 1
    return _delivered(settings)


def test_real_digest_items(delivered: EmailMessage) -> None:
    text, html = _part(delivered, "plain"), _part(delivered, "html")
    assert "arxiv.org/search" not in text and "arxiv.org/search" not in html
    items = re.split(r"\n(?=\d+\. )", text.split("\n--\n")[0])[1:]
    assert len(items) >= 8
    flat = [" ".join(item.split()) for item in items]
    # Hugging Face JSON: its paper page, its authors, the arXiv date.
    inf_cl = next(item for item in flat if "Breaking the Memory Barrier" in item)
    assert "https://huggingface.co/papers/2410.17243" in inf_cl
    assert "Zesen Cheng, Hang Zhang, Lidong Bing · published 22 Oct 2024" in inf_cl
    # Saved pages name no link: every such item says so; dated ones say what the date is.
    from_pages = [item for item in flat if "huggingface.co/papers" not in item]
    assert from_pages and all(
        "No link: the listing it came from named none." in item for item in from_pages
    )
    assert any("published 23 Oct 2023" in item for item in from_pages)  # "Oct 23, 2023" on a page
    assert html.count("No link: the listing it came from named none.") == len(from_pages)
    # The footer names the interests as a reader says them.
    footer = " ".join(text.split("\n--\n")[1].split())
    assert "with the interests robot learning, contrastive loss, unlearning." in footer
    assert "^" not in footer and "^" not in html


def test_text_part_reads_at_72_columns(delivered: EmailMessage) -> None:
    long_lines = [line for line in _part(delivered, "plain").splitlines() if len(line) > 72]
    assert all(URL_LINE.match(line) for line in long_lines), long_lines
    rendered = EmailRenderer().render(
        digest_view((*EMAIL_ITEMS, *(long_item(n) for n in range(20))))
    )
    long_lines = [line for line in rendered.text.splitlines() if len(line) > 72]
    assert all(URL_LINE.match(line) for line in long_lines), long_lines


def _at_the_limits(number: int, character: str) -> ItemView:
    """An item with every field at the import limits, in a character HTML escapes."""
    word = character * 9 + " "
    url = "https://example.org/" + "p" * 1_900
    return ItemView(
        key=f"arxiv:2411.{number:05d}",
        title=(word * 60)[: TITLE_CHARS - 1] + "…",
        url=url,
        abstract=(word * 600)[:ABSTRACT_CHARS],
        authors=tuple((word * 30)[:200] for _ in range(200)),
        published=datetime(2026, 1, 1, tzinfo=UTC),
        upvotes=2**31 - 1,
        code_url=url + "/code",
        pdf_url=url + "/pdf",
        reason="matched " + ", ".join(f'"{character * SHORT_CHARS}"' for _ in range(3)),
    )


def test_twenty_ordinary_items_all_fit_under_gmail_clipping() -> None:
    rendered = EmailRenderer().render(digest_view(tuple(long_item(n) for n in range(20))))
    assert rendered.html.count('class="pd-item"') == 20
    assert len(rendered.html.encode()) < HTML_BUDGET
    assert "did not fit" not in rendered.html


@pytest.mark.parametrize("character", ["w", "&", "é", '"'])
def test_twenty_items_at_the_field_limits_stay_under_gmail_clipping(character: str) -> None:
    view = digest_view(tuple(_at_the_limits(n, character) for n in range(20)))
    rendered = EmailRenderer().render(view)
    size = len(rendered.html.encode())
    assert size <= HTML_BUDGET, size
    shown = rendered.html.count('class="pd-item"')
    assert 1 <= shown < 20
    note = f"{20 - shown} more papers did not fit in this email; your feed has them."
    assert note in rendered.html and note in rendered.text
    assert rendered.subject.startswith("Paper digest: 20 new papers")
    assert view.links.unsubscribe_url in rendered.html  # the footer is never clipped away
