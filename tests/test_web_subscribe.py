"""Signup with double opt-in, against a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage

import httpx
import pytest
from web_fixtures import (  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
    BASE,
    RUN_AT,
    Clock,
    SettingsFactory,
    csrf_of,
    make_app,
    seed,
    subscriber_row,
    web_client,
)

from digest.config.settings import Settings
from digest.runner import run_digests
from digest.store import db
from digest.subscribers.library import get_subscriber, interests_of, set_status, spec_of
from digest.testing.smtp import SmtpSink

FORM = {
    "email": "Newton@Example.org",
    "keywords": "diffusion\nprotein design^2",
    "excludes": "survey",
    "frequency": "daily",
    "weekday": "tuesday",
    "hour": "7",
    "timezone": "Europe/Berlin",
}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def smtp_settings(make_settings: SettingsFactory, sink: SmtpSink) -> Settings:
    return make_settings(delivery="smtp", smtp_host=sink.host, smtp_port=sink.port, smtp_retries=0)


def subscribe(client: httpx.Client, **changes: str) -> httpx.Response:
    token = csrf_of(client.get("/").text)
    return client.post("/subscribe", data={**FORM, "csrf_token": token, **changes})


def confirm_link(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    links = [line for line in text.splitlines() if line.startswith(f"{BASE}/confirm/")]
    assert len(links) == 1, text
    return links[0].removeprefix(BASE)


def test_double_opt_in(backend: str, smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    clock = Clock(RUN_AT)
    with web_client(make_app(settings, clock)) as client:
        landing = client.get("/")
        assert 'data-testid="subscribe-form"' in landing.text
        done = subscribe(client)
        assert done.status_code == 200 and 'data-testid="subscribe-done"' in done.text

        row = subscriber_row(settings, "newton@example.org")
        assert row is not None and (row.status, row.origin) == ("pending", "web")
        assert (row.frequency, row.weekday, row.hour, row.timezone) == (
            "daily",
            1,
            7,
            "Europe/Berlin",
        )
        assert len(sink.messages) == 1
        received = sink.messages[0]
        message = received.message
        assert received.rcpt_tos == ("newton@example.org",)
        assert message["Subject"] == "Confirm your subscription to Paper digest"
        assert message["Message-ID"] and message["Date"] and message["From"]
        assert message["Auto-Submitted"] == "auto-generated"
        link = confirm_link(message)

        # Nothing but the confirmation goes to a pending address: a run sends nothing.
        clock.advance(days=1)
        assert run_digests(settings, now=clock.now).sent == 0
        assert len(sink.messages) == 1

        confirmed = client.get(link)
        assert confirmed.status_code == 200
        assert 'data-testid="confirm-done"' in confirmed.text
        row = subscriber_row(settings, "newton@example.org")
        assert row is not None and row.status == "active" and row.confirmed_at is not None
        manage = re.search(r'data-testid="manage-link" href="([^"]+)"', confirmed.text)
        assert manage and manage.group(1) == f"/manage/{row.token}"
        assert client.get(manage.group(1)).status_code == 200
        assert client.get(link).status_code == 200  # a second click is harmless


def test_same_answer_whatever_the_address(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    active = seed(settings, email="active@example.org", deliver=False)
    seed(settings, email="paused@example.org", deliver=False)
    with db.transaction(settings) as session:
        set_status(session, "paused@example.org", "paused", now=RUN_AT)
        before = spec_of(interests_of(session, get_subscriber(session, active.email)))
    with web_client(make_app(settings)) as client:
        answers = {
            email: subscribe(client, email=email)
            for email in ("new@example.org", "active@example.org", "paused@example.org")
        }
    assert {(r.status_code, r.text) for r in answers.values()} == {
        (200, answers["new@example.org"].text)
    }
    assert {
        k: v for k, v in answers["new@example.org"].headers.items() if k != "content-length"
    } == {k: v for k, v in answers["active@example.org"].headers.items() if k != "content-length"}
    # The confirmed subscribers get their manage link instead of a confirmation link.
    by_rcpt = {m.rcpt_tos[0]: m.message for m in sink.messages}
    assert set(by_rcpt) == {"new@example.org", "active@example.org", "paused@example.org"}
    notice = by_rcpt["active@example.org"]
    assert notice["Subject"] == "Your subscription to Paper digest"
    notice_body = notice.get_body(("plain",))
    assert notice_body is not None
    assert f"{BASE}/manage/{active.token}" in notice_body.get_content()
    assert "/confirm/" in str(by_rcpt["new@example.org"].get_body(("plain",)).get_content())  # type: ignore[union-attr]  # present here, or the test fails on None
    with db.transaction(settings) as session:
        kept = get_subscriber(session, active.email)
        assert kept.status == "active"  # an unconfirmed form never edits a confirmed profile
        assert spec_of(interests_of(session, kept)) == before
        assert get_subscriber(session, "paused@example.org").status == "paused"


def test_resubscribe_after_unsubscribing(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    gone = seed(settings, email="back@example.org", deliver=False)
    with db.transaction(settings) as session:
        set_status(session, gone.email, "unsubscribed", now=RUN_AT)
    with web_client(make_app(settings)) as client:
        assert (
            subscribe(client, email="back@example.org", keywords="graph networks").status_code
            == 200
        )
        row = subscriber_row(settings, gone.email)
        assert row is not None and row.status == "pending"
        assert client.get(confirm_link(sink.messages[0].message)).status_code == 200
    with db.transaction(settings) as session:
        back = get_subscriber(session, gone.email)
        assert back.status == "active" and back.unsubscribed_at is None
        assert spec_of(interests_of(session, back)).keywords == ["graph networks"]


def test_confirmation_links_expire_and_cannot_be_forged(
    smtp_settings: Settings, sink: SmtpSink
) -> None:
    settings = smtp_settings
    clock = Clock(RUN_AT)
    with web_client(make_app(settings, clock)) as client:
        subscribe(client)
        link = confirm_link(sink.messages[0].message)
        signed = link.removeprefix("/confirm/")
        forged = signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")
        for bad in (f"/confirm/{forged}", "/confirm/1-0123456789abcdef", "/confirm/x"):
            page = client.get(bad)
            assert page.status_code == 400 and 'data-testid="confirm-invalid"' in page.text
            assert 'href="/"' in page.text
        clock.advance(seconds=settings.confirm_max_age + 1)
        expired = client.get(link)
        assert expired.status_code == 400 and "expired" in expired.text
        row = subscriber_row(settings, "newton@example.org")
        assert row is not None and row.status == "pending"
        # A fresh signup sends a fresh link that works.
        subscribe(client)
        assert client.get(confirm_link(sink.messages[1].message)).status_code == 200
        # Once unsubscribed, an old link no longer resubscribes anyone.
        with db.transaction(settings) as session:
            set_status(session, "newton@example.org", "unsubscribed", now=clock.now)
        assert client.get(confirm_link(sink.messages[1].message)).status_code == 400


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"email": "not-an-address"}, "invalid email address"),
        ({"keywords": '"unbalanced'}, "unbalanced quotes"),
        ({"keywords": ""}, "nothing to match"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"hour": "25"}, "Hour must be"),
        ({"frequency": "hourly"}, "frequency must be"),
        ({"keywords": "x^99"}, "weight must be"),
    ],
)
def test_form_errors_change_nothing(
    smtp_settings: Settings, sink: SmtpSink, change: dict[str, str], message: str
) -> None:
    with web_client(make_app(smtp_settings)) as client:
        page = subscribe(client, **change)
    assert page.status_code == 400
    assert 'data-testid="form-error"' in page.text and message in page.text
    assert 'data-testid="subscribe-form"' in page.text
    assert subscriber_row(smtp_settings, "newton@example.org") is None
    assert sink.messages == []


def test_hostile_input_is_escaped(smtp_settings: Settings) -> None:
    hostile = '<script>alert(1)</script>"^'
    with web_client(make_app(smtp_settings)) as client:
        page = subscribe(client, keywords=hostile, email='"><script>@x')
    assert page.status_code == 400
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_csrf_is_required(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    clock = Clock(RUN_AT)
    app = make_app(settings, clock)
    with web_client(app) as client:
        token = csrf_of(client.get("/").text)
        assert client.post("/subscribe", data=FORM).status_code == 403  # no field
        assert client.post("/subscribe", data={**FORM, "csrf_token": "1.abc"}).status_code == 403
        posted = {**FORM, "csrf_token": token}
        with web_client(app, ip="198.51.100.1") as other:  # another visitor's cookie
            other.get("/")
            refused = other.post("/subscribe", data=posted)
            assert refused.status_code == 403 and "Reload the page" in refused.text
        clock.advance(days=2)
        assert client.post("/subscribe", data=posted).status_code == 403  # expired
    with web_client(app) as fresh:  # no cookie at all
        assert fresh.post("/subscribe", data=posted).status_code == 403
    assert sink.messages == [] and subscriber_row(settings, "newton@example.org") is None


def test_rate_limits(make_settings: SettingsFactory, sink: SmtpSink) -> None:
    settings = make_settings(
        delivery="smtp",
        smtp_host=sink.host,
        smtp_port=sink.port,
        subscribe_ip_limit=5,
        subscribe_address_limit=2,
    )
    app = make_app(settings)
    with web_client(app) as client:
        pages = [subscribe(client) for _ in range(3)]  # the same address three times
        assert {(p.status_code, p.text) for p in pages} == {(200, pages[0].text)}
        assert len(sink.messages) == 2  # the third is answered the same and sends nothing
        assert subscribe(client, email="other@example.org").status_code == 200
        assert subscribe(client, email="third@example.org").status_code == 200
        limited = subscribe(client, email="fourth@example.org")  # sixth post from this IP
        assert limited.status_code == 429 and limited.headers["retry-after"] == "3600"
        assert subscriber_row(settings, "fourth@example.org") is None
    with web_client(app, ip="198.51.100.9") as elsewhere:
        assert subscribe(elsewhere, email="fourth@example.org").status_code == 200


def test_mail_failure_is_a_503_and_stores_nothing(smtp_settings: Settings, sink: SmtpSink) -> None:
    sink.fail_next(550, stage="rcpt")
    with web_client(make_app(smtp_settings)) as client:
        page = subscribe(client)
    assert page.status_code == 503 and "try again later" in page.text
    assert subscriber_row(smtp_settings, "newton@example.org") is None
