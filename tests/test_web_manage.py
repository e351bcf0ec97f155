"""The manage page: edit everything, pause / resume, feeds, recent digests, preview."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import func, select
from web_fixtures import (  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
    BASE,
    SettingsFactory,
    csrf_of,
    make_app,
    outbox_count,
    seed,
    subscriber_row,
    web_client,
)

from digest.config.settings import Settings
from digest.store import db
from digest.store.models import Digest
from digest.subscribers.library import get_subscriber, interests_of, spec_of

EDIT = {
    "keywords": "graph networks^2\nauthor:Ada Lovelace\ncat:cs.LG",
    "excludes": "survey\nbenchmark",
    "frequency": "off",
    "weekday": "friday",
    "hour": "18",
    "timezone": "America/New_York",
    "max_items": "7",
}


def save(client: httpx.Client, token: str, **changes: str) -> httpx.Response:
    csrf = csrf_of(client.get(f"/manage/{token}").text)
    return client.post(f"/manage/{token}", data={**EDIT, "csrf_token": csrf, **changes})


def spec(settings: Settings, email: str) -> tuple[list[str], list[str], list[str], list[str]]:
    with db.transaction(settings) as session:
        found = spec_of(interests_of(session, get_subscriber(session, email)))
    return found.keywords, found.excludes, found.authors, found.categories


def test_manage_page_shows_everything(backend: str, make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    with web_client(make_app(settings)) as client:
        page = client.get(f"/manage/{ada.token}")
    assert page.status_code == 200
    html = page.text
    assert f'action="/manage/{ada.token}"' in html and 'data-testid="manage-form"' in html
    for fmt in ("atom", "rss", "json"):
        assert re.search(
            rf'readonly data-testid="feed-{fmt}" value="{BASE}/feeds/{ada.token}\.{fmt}"', html
        )
    recent = html.split('data-testid="recent-digests"', 1)[1].split("</div>", 1)[0]
    assert "Monday 23 Nov 2026" in recent and "2 papers" in recent
    assert f'data-testid="preview-link" href="/manage/{ada.token}/preview"' in html
    assert f'action="/manage/{ada.token}/pause"' in html and ">Pause<" in html
    assert '<option value="daily" selected>' in html
    assert re.search(r'<textarea id="keywords" name="keywords"[^>]*>diffusion</textarea>', html)
    for field in ("keywords", "excludes", "frequency", "weekday", "hour", "timezone", "max_items"):
        assert f'<label for="{field}">' in html and f'name="{field}"' in html


def test_save_everything(backend: str, make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    with web_client(make_app(settings)) as client:
        saved = save(client, ada.token)
        assert saved.status_code == 303
        assert saved.headers["location"] == f"/manage/{ada.token}?done=saved"
        page = client.get(saved.headers["location"])
        assert 'data-testid="saved"' in page.text
        assert "author:Ada Lovelace" in page.text and "cat:cs.LG" in page.text
        # Saving the page as shown changes nothing (the profile reads back as it was).
        assert save(client, ada.token).status_code == 303
    row = subscriber_row(settings, ada.email)
    assert row is not None
    assert (row.frequency, row.weekday, row.hour, row.timezone, row.max_items) == (
        "off",
        4,
        18,
        "America/New_York",
        7,
    )
    assert spec(settings, ada.email) == (
        ["graph networks^2"],
        ["survey", "benchmark"],
        ["Ada Lovelace"],
        ["cs.LG"],
    )


def test_profile_errors_change_nothing(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    before = spec(settings, ada.email)
    with web_client(make_app(settings)) as client:
        for change in (
            {"keywords": 'graph "networks'},
            {"keywords": "ok\nx^0"},
            {"max_items": "1000"},
            {"timezone": "Nowhere/City"},
            {"weekday": "someday"},
        ):
            page = save(client, ada.token, **change)
            assert page.status_code == 400, change
            assert 'data-testid="form-error"' in page.text
            assert 'data-testid="manage-form"' in page.text
    row = subscriber_row(settings, ada.email)
    assert row is not None and (row.frequency, row.hour, row.timezone) == ("daily", 7, "UTC")
    assert spec(settings, ada.email) == before


def test_hostile_keywords_are_escaped(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    with web_client(make_app(settings)) as client:
        assert save(client, ada.token, keywords="<script>alert(1)</script>").status_code == 303
        page = client.get(f"/manage/{ada.token}").text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_pause_and_resume(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    with web_client(make_app(settings)) as client:
        page = client.get(f"/manage/{ada.token}").text
        pause_csrf = csrf_of(page.split(f'action="/manage/{ada.token}/pause"', 1)[1])
        assert client.post(f"/manage/{ada.token}/pause").status_code == 403
        assert (
            client.post(
                f"/manage/{ada.token}/pause",
                data={"csrf_token": csrf_of(page)},  # the save form's
            ).status_code
            == 403
        )
        paused = client.post(f"/manage/{ada.token}/pause", data={"csrf_token": pause_csrf})
        assert paused.status_code == 303 and paused.headers["location"].endswith("?done=paused")
        assert subscriber_row(settings, ada.email).status == "paused"  # type: ignore[union-attr]  # present here, or the test fails on None
        page = client.get(paused.headers["location"]).text
        assert 'data-testid="saved"' in page and ">Resume<" in page
        resume_csrf = csrf_of(page.split(f'action="/manage/{ada.token}/resume"', 1)[1])
        resumed = client.post(f"/manage/{ada.token}/resume", data={"csrf_token": resume_csrf})
        assert resumed.status_code == 303
    assert subscriber_row(settings, ada.email).status == "active"  # type: ignore[union-attr]  # present here, or the test fails on None


def test_preview_records_and_sends_nothing(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings, deliver=False)
    with web_client(make_app(settings)) as client:
        preview = client.get(f"/manage/{ada.token}/preview")
    assert preview.status_code == 200
    assert 'data-testid="preview"' in preview.text
    assert "Diffusion models for protein design" in preview.text
    assert "<script>alert" not in preview.text
    csp = preview.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert preview.headers["cache-control"] == "no-store"
    with db.transaction(settings) as session:
        assert session.execute(select(func.count()).select_from(Digest)).scalar() == 0
    assert outbox_count(settings) == 0


def test_unknown_and_pending_tokens_are_404(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    pending = seed(settings, email="p@example.org", status="pending", deliver=False)
    with web_client(make_app(settings)) as client:
        for token in ("A" * 32, pending.token, "x", "../etc"):
            assert client.get(f"/manage/{token}").status_code == 404
            assert client.get(f"/manage/{token}/preview").status_code == 404
            assert client.post(f"/manage/{token}", data=EDIT).status_code == 404
            assert client.post(f"/manage/{token}/pause").status_code == 404
            assert client.post(f"/manage/{token}/resume").status_code == 404
        missing = client.get("/no/such/page")
        assert missing.status_code == 404 and 'data-testid="error"' in missing.text
    assert subscriber_row(settings, "p@example.org").status == "pending"  # type: ignore[union-attr]  # present here, or the test fails on None
