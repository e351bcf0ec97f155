"""Unsubscribe: GET asks and changes nothing, POST acts, RFC 8058 one-click works bare."""

from __future__ import annotations

import email
from email import policy
from urllib.parse import urlsplit

from web_fixtures import (  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
    RUN_AT,
    SettingsFactory,
    csrf_of,
    make_app,
    seed,
    subscriber_row,
    web_client,
)

from digest.config.settings import Settings
from digest.runner import run_digests


def status_of(settings: Settings, address: str) -> str:
    row = subscriber_row(settings, address)
    assert row is not None
    return row.status


def test_get_changes_nothing_and_the_form_unsubscribes(
    backend: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings()
    ada = seed(settings)
    with web_client(make_app(settings)) as client:
        for _ in range(2):  # a link scanner's prefetch and the person's click
            page = client.get(f"/unsubscribe/{ada.token}")
            assert page.status_code == 200
            assert (
                f'data-testid="unsubscribe-form" method="post" action="/unsubscribe/{ada.token}"'
                in page.text
            )
            assert ">Unsubscribe<" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert status_of(settings, ada.email) == "active"

        assert client.post(f"/unsubscribe/{ada.token}").status_code == 403  # no CSRF field
        assert status_of(settings, ada.email) == "active"
        done = client.post(f"/unsubscribe/{ada.token}", data={"csrf_token": csrf_of(page.text)})
        assert done.status_code == 200 and 'data-testid="unsubscribed"' in done.text
        assert status_of(settings, ada.email) == "unsubscribed"
        assert subscriber_row(settings, ada.email).unsubscribed_at is not None  # type: ignore[union-attr]  # present here, or the test fails on None

        # The GET now says so, and offers the way back.
        again = client.get(f"/unsubscribe/{ada.token}")
        assert 'data-testid="unsubscribed"' in again.text
        resume = client.post(f"/manage/{ada.token}/resume", data={"csrf_token": csrf_of(done.text)})
        assert resume.status_code == 303 and ">Resubscribe<" in done.text
        assert status_of(settings, ada.email) == "active"


def test_one_click_from_the_real_header(backend: str, make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)  # a digest went to the outbox with its List-Unsubscribe header
    eml = next(settings.resolved_outbox_dir.glob("*.eml")).read_bytes()
    message = email.message_from_bytes(eml, policy=policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(message["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
    path = urlsplit(url).path
    assert path == f"/unsubscribe/{ada.token}"
    with web_client(make_app(settings)) as client:  # a mail provider: no cookies, no CSRF
        answer = client.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert not client.cookies
    assert answer.status_code == 200  # RFC 8058 §3.2: no redirect
    assert "location" not in answer.headers
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "You are unsubscribed.\n"
    assert status_of(settings, ada.email) == "unsubscribed"
    assert run_digests(settings, now=RUN_AT.replace(day=24)).sent == 0
    with web_client(make_app(settings)) as client:  # repeated: still fine
        again = client.post(path, data={"List-Unsubscribe": "One-Click"})
        assert again.status_code == 200


def test_one_click_multipart_and_wrong_values(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings, deliver=False)
    with web_client(make_app(settings)) as client:
        # Some providers post the same field as multipart/form-data (RFC 8058 §3.1).
        wrong = client.post(f"/unsubscribe/{ada.token}", data={"List-Unsubscribe": "Yes"})
        assert wrong.status_code == 403 and status_of(settings, ada.email) == "active"
        answer = client.post(
            f"/unsubscribe/{ada.token}",
            files={"List-Unsubscribe": (None, b"One-Click")},
        )
    assert answer.status_code == 200 and status_of(settings, ada.email) == "unsubscribed"


def test_unknown_token_is_404_everywhere(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    pending = seed(settings, email="p@example.org", status="pending", deliver=False)
    with web_client(make_app(settings)) as client:
        for token in ("B" * 32, pending.token):
            assert client.get(f"/unsubscribe/{token}").status_code == 404
            one_click = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
            assert one_click.status_code == 404
    assert status_of(settings, "p@example.org") == "pending"
