"""The subscriber's pages in a real browser: Debian's chromium driven by Playwright.

subscribe → confirmation mail read from a real SMTP server on loopback → confirm → manage
(change keywords) → preview → pause/resume → unsubscribe, against the real app under uvicorn;
a digest item's "More like this" page, its button, and undo on the manage page.
Every step is screenshotted into the test's temporary directory and checked in the store.
Chromium is never downloaded: ``make system-deps`` (part of ``make test``) installs Debian's
package when it is missing; without it these tests skip, except under ``CI=true`` where they
fail.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import col
from web_server import LiveApp, live_app  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package

from digest.config.resources import sample_dir
from digest.config.settings import Settings
from digest.render.assemble import render_preview
from digest.sources.imports import import_files
from digest.store import db
from digest.store.models import Digest, Subscriber
from digest.subscribers.feedback import ratings_of
from digest.subscribers.library import (
    ProfileSpec,
    SubscriberFields,
    add_subscriber,
    interests_of,
    spec_of,
)
from digest.testing.smtp import SmtpSink

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests may run as root in a container
    "--disable-gpu",
    "--disable-background-networking",  # no calls home: the only network here is loopback
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STEP_TIMEOUT_MS = 10_000  # any single page action or wait
MAIL_TIMEOUT = 10.0  # seconds to wait for the confirmation mail
EMAIL = "ada@example.org"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium for the module (a launch takes about a second)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (Debian's chromium: `make system-deps` as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only with chromium

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


def import_sample(settings: Settings) -> None:
    """Papers first seen now, so a preview made by the app (on the real clock) finds them."""
    import_files(settings, sorted(sample_dir().glob("*.txt.gz")), now=datetime.now(UTC))


@pytest.fixture
def live(make_settings: Callable[..., Settings], sink: SmtpSink) -> Iterator[LiveApp]:
    with live_app(make_settings, sink, prepare=import_sample) as running:
        yield running


class Steps:
    """A page plus numbered full-page screenshots in ``directory``."""

    def __init__(self, page: Any, directory: Path) -> None:
        self.page = page
        self.directory = directory
        self.taken: list[Path] = []

    def shot(self, name: str) -> None:
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)


@pytest.fixture
def steps(browser: Any, tmp_path: Path) -> Iterator[Steps]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    directory = tmp_path / "screenshots"
    directory.mkdir()
    try:
        yield Steps(context.new_page(), directory)
    finally:
        context.close()


def set_field(form: Any, name: str, value: str) -> None:
    """Fill an input or textarea, or pick an option of a select, by its name."""
    field = form.locator(f'[name="{name}"]')
    if field.evaluate("element => element.tagName") == "SELECT":
        field.select_option(value)
    else:
        field.fill(value)


def subscriber_state(settings: Settings) -> dict[str, Any]:
    """What the store says about the test subscriber."""
    with db.transaction(settings) as session:
        row = session.execute(select(Subscriber).where(col(Subscriber.email) == EMAIL)).scalar()
        assert row is not None, f"no subscriber {EMAIL} in the store"
        spec = spec_of(interests_of(session, row))
        digests = session.execute(
            select(func.count()).select_from(Digest).where(col(Digest.subscriber_id) == row.id)
        ).scalar_one()
        return {
            "status": row.status,
            "token": row.token,
            "keywords": spec.keywords,
            "excludes": spec.excludes,
            "schedule": (row.frequency, row.weekday, row.hour, row.timezone),
            "digests": digests,
        }


def wait_for_mail(sink: SmtpSink, count: int) -> list[EmailMessage]:
    deadline = time.monotonic() + MAIL_TIMEOUT
    while len(sink.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sink.messages) >= count, f"expected {count} mail(s), got {len(sink.messages)}"
    return [m.message for m in sink.messages]


def confirm_link(message: EmailMessage, base_url: str) -> str:
    """The confirmation URL: the text part's line that starts with ``{base_url}/confirm/``."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the confirmation mail has no text part"
    lines = [ln.strip() for ln in part.get_content().splitlines()]
    links = [ln for ln in lines if ln.startswith(f"{base_url}/confirm/")]
    assert len(links) == 1, f"expected one confirmation link line, got {links}"
    return links[0]


def subscribe(steps: Steps, live: LiveApp, keywords: str, excludes: str = "") -> None:
    page = steps.page
    page.goto(f"{live.url}/")
    form = page.get_by_test_id("subscribe-form")
    steps.shot("subscribe-form")
    set_field(form, "email", EMAIL)
    set_field(form, "keywords", keywords)
    set_field(form, "excludes", excludes)
    set_field(form, "frequency", "weekly")
    set_field(form, "weekday", "friday")
    set_field(form, "hour", "7")
    set_field(form, "timezone", "Europe/Berlin")
    form.get_by_role("button", name="Subscribe").click()
    page.get_by_test_id("subscribe-done").wait_for()
    steps.shot("subscribe-done")


def test_subscribe_confirm_manage_preview_unsubscribe(
    steps: Steps, live: LiveApp, sink: SmtpSink
) -> None:
    page, settings = steps.page, live.settings

    subscribe(steps, live, "reinforcement learning\nrobot", excludes="survey")
    state = subscriber_state(settings)
    assert state["status"] == "pending"  # double opt-in: nothing is sent before confirming
    assert state["keywords"] == ["reinforcement learning", "robot"]
    assert state["excludes"] == ["survey"]
    assert state["schedule"] == ("weekly", 4, 7, "Europe/Berlin")  # 4: Friday
    token = state["token"]

    # The confirmation mail, as a real SMTP server received it.
    [message] = wait_for_mail(sink, 1)
    assert message["Subject"] == f"Confirm your subscription to {settings.site_name}"
    assert message["To"] == EMAIL
    page.goto(confirm_link(message, live.url))
    page.get_by_test_id("confirm-done").wait_for()
    steps.shot("confirm-done")
    assert subscriber_state(settings)["status"] == "active"
    manage = page.get_by_test_id("manage-link")
    assert manage.get_attribute("href").endswith(f"/manage/{token}")

    # Manage: the feed URLs are the subscriber's own; change the keywords.
    manage.click()
    form = page.get_by_test_id("manage-form")
    form.wait_for()
    steps.shot("manage")
    for fmt in ("atom", "rss", "json"):
        field = page.get_by_test_id(f"feed-{fmt}")
        assert field.input_value() == f"{live.url}/feeds/{token}.{fmt}"
        assert field.get_attribute("readonly") is not None
    page.get_by_test_id("recent-digests").wait_for(state="attached")
    set_field(form, "keywords", "reinforcement learning\ndiffusion policy\nhumanoid robot")
    form.get_by_role("button", name="Save").click()
    page.get_by_test_id("saved").wait_for()
    steps.shot("manage-saved")
    assert subscriber_state(settings)["keywords"] == [
        "reinforcement learning",
        "diffusion policy",
        "humanoid robot",
    ]

    # Bad input is refused with a message and changes nothing. noValidate lets an empty
    # keyword list reach the server, which must check it itself.
    form = page.get_by_test_id("manage-form")
    form.evaluate("f => { f.noValidate = true; }")
    set_field(form, "keywords", "")
    form.get_by_role("button", name="Save").click()
    page.get_by_test_id("form-error").wait_for()
    steps.shot("manage-error")
    assert subscriber_state(settings)["keywords"][0] == "reinforcement learning"

    # Preview: what the next digest would hold; records and sends nothing.
    page.goto(f"{live.url}/manage/{token}")
    page.get_by_test_id("preview-link").click()
    preview = page.get_by_test_id("preview")
    preview.wait_for()
    steps.shot("preview")
    expected, _ = render_preview(settings, EMAIL, now=datetime.now(UTC))
    assert expected.items, "the sample should give this profile some papers"
    banner = " ".join(preview.inner_text().split())
    assert f"{len(expected.items)} papers" in banner
    page_text = " ".join(page.locator("body").inner_text().split())
    assert " ".join(expected.items[0].title.split()) in page_text  # the email itself, below
    assert subscriber_state(settings)["digests"] == 0
    assert len(sink.messages) == 1

    # Pause and resume from the manage page.
    page.goto(f"{live.url}/manage/{token}")
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("button", name="Resume").wait_for()
    steps.shot("paused")
    assert subscriber_state(settings)["status"] == "paused"
    page.get_by_role("button", name="Resume").click()
    page.get_by_role("button", name="Pause").wait_for()
    assert subscriber_state(settings)["status"] == "active"

    # Unsubscribe, by the manage page's link: the GET only shows the form; the POST acts.
    page.get_by_role("link", name="Unsubscribe").click()
    page.get_by_test_id("unsubscribe-form").wait_for()
    assert page.url == f"{live.url}/unsubscribe/{token}"
    steps.shot("unsubscribe-form")
    assert subscriber_state(settings)["status"] == "active"
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_test_id("unsubscribed").wait_for()
    assert page.get_by_role("button", name="Resubscribe").is_visible()
    steps.shot("unsubscribed")
    assert subscriber_state(settings)["status"] == "unsubscribed"

    assert [p.name for p in steps.taken] == [
        "01-subscribe-form.png",
        "02-subscribe-done.png",
        "03-confirm-done.png",
        "04-manage.png",
        "05-manage-saved.png",
        "06-manage-error.png",
        "07-preview.png",
        "08-paused.png",
        "09-unsubscribe-form.png",
        "10-unsubscribed.png",
    ]
    for shot in steps.taken:
        assert shot.read_bytes().startswith(b"\x89PNG"), shot


def test_subscribe_works_without_javascript(
    browser: Any, live: LiveApp, sink: SmtpSink, tmp_path: Path
) -> None:
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        steps = Steps(context.new_page(), tmp_path)
        subscribe(steps, live, "graph neural networks")
    finally:
        context.close()
    state = subscriber_state(live.settings)
    assert (state["status"], state["keywords"]) == ("pending", ["graph neural networks"])
    assert state["schedule"] == ("weekly", 4, 7, "Europe/Berlin")
    [message] = wait_for_mail(sink, 1)
    assert confirm_link(message, live.url)


def test_one_click_unsubscribe_post_without_cookies(live: LiveApp) -> None:
    """RFC 8058: a mail client's POST (no cookies, no CSRF token) unsubscribes; a GET doesn't."""
    with db.transaction(live.settings) as session:
        token = add_subscriber(
            session,
            email=EMAIL,
            profile=ProfileSpec(keywords=["robot"]),
            fields=SubscriberFields(),
            settings=live.settings,
            now=datetime.now(UTC),
        ).token
    with httpx.Client(base_url=live.url, timeout=10, follow_redirects=False) as client:
        shown = client.get(f"/unsubscribe/{token}")
    assert shown.status_code == 200
    assert subscriber_state(live.settings)["status"] == "active"
    # A fresh client: the mail client's POST carries none of the cookies the page may set.
    with httpx.Client(base_url=live.url, timeout=10, follow_redirects=False) as client:
        done = client.post(
            f"/unsubscribe/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert done.status_code == 200, done.text
    assert subscriber_state(live.settings)["status"] == "unsubscribed"


def test_more_like_this_from_a_preview_link_and_undo(live: LiveApp, steps: Steps) -> None:
    """A digest item's "More like this" link: the page shows the paper and one button; the
    click records the rating, which the manage page lists and can undo."""
    with db.transaction(live.settings) as session:
        add_subscriber(
            session,
            email=EMAIL,
            profile=ProfileSpec(keywords=["reinforcement learning"]),
            fields=SubscriberFields(),
            settings=live.settings,
            now=datetime.now(UTC),
        )
    view, _ = render_preview(live.settings, EMAIL, now=datetime.now(UTC))
    item = view.items[0]
    assert item.more_url and item.more_url.startswith(f"{live.url}/feedback/")
    page = steps.page
    page.goto(item.more_url)
    steps.shot("vote-page")
    assert page.get_by_role("link", name=item.title).count() == 1
    assert ratings_of_subscriber(live.settings) == []  # opening the link votes nothing
    page.get_by_test_id("feedback-form").get_by_role("button", name="More like this").click()
    page.get_by_test_id("rated").wait_for()
    steps.shot("vote-recorded")
    assert ratings_of_subscriber(live.settings) == [(item.key, 1)]
    page.get_by_role("link", name="Your rated papers (undo a rating)").click()
    listed = page.get_by_test_id("ratings")
    assert item.title in listed.inner_text()
    steps.shot("manage-ratings")
    listed.get_by_role("button", name="Undo").click()
    page.get_by_text("That rating is undone.").wait_for()
    steps.shot("rating-undone")
    assert ratings_of_subscriber(live.settings) == []


def ratings_of_subscriber(settings: Settings) -> list[tuple[str, int]]:
    with db.transaction(settings) as session:
        row = session.execute(select(Subscriber).where(col(Subscriber.email) == EMAIL)).scalar_one()
        return [(r.key, r.vote) for r in ratings_of(session, row)]
