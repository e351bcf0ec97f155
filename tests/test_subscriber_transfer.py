"""``subscribers export`` + ``import``: tokens and history survive, names agree.

Issue 11, item 5: an export + import gave subscribers new tokens (every feed URL and
unsubscribe link already mailed broke), lost what they had received, and wrote ``exclude`` /
``require`` where ``show --json`` says ``excludes`` / ``required``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col
from typer.testing import CliRunner

from digest.cli import app
from digest.config.resources import sample_dir
from digest.config.settings import Settings
from digest.digests.transfer import FORMAT, VERSION, export_all, import_file
from digest.errors import ProfileError
from digest.runner import run_digests
from digest.sources.imports import import_files
from digest.store import db
from digest.store.models import Digest, DigestItem, Paper, Subscriber
from digest.subscribers import admin
from digest.subscribers.library import PreferenceInput

IMPORTED = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday
RUN_AT = IMPORTED + timedelta(hours=3)
SAMPLE = sorted(sample_dir().glob("*.txt.gz"))


def _add(settings: Settings, email: str, keywords: list[str], **values: Any) -> None:
    preferences = PreferenceInput.from_values(
        {"keywords": keywords, "frequency": "daily", "hour": 7, **values}
    )
    admin.add(settings, email, preferences, now=IMPORTED - timedelta(days=1))


def _sent_keys(settings: Settings, email: str) -> list[list[str]]:
    """Per digest of ``email`` (oldest first), the keys of its papers in rank order."""
    with db.transaction(settings) as session:
        subscriber = session.execute(
            select(Subscriber).where(col(Subscriber.email) == email)
        ).scalar_one()
        digests = session.execute(
            select(Digest)
            .where(col(Digest.subscriber_id) == subscriber.id)
            .order_by(col(Digest.window_end))
        ).scalars()
        result = []
        for digest in digests:
            keys = session.execute(
                select(col(Paper.key))
                .join(DigestItem, col(DigestItem.paper_id) == col(Paper.id))
                .where(col(DigestItem.digest_id) == digest.id)
                .order_by(col(DigestItem.rank))
            ).scalars()
            result.append(list(keys))
        return result


@pytest.fixture
def origin(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    """A SQLite store where ada got a digest and rosalind an empty one."""
    settings = make_settings(data_dir=tmp_path / "origin", database_url=None)
    _add(settings, "ada@example.org", ["reinforcement learning", "RLHF^2"], excludes=["survey"])
    _add(settings, "rosalind@example.org", ["cryo-EM"])
    import_files(settings, SAMPLE, now=IMPORTED)
    report = run_digests(settings, now=RUN_AT)
    assert (report.sent, report.empty) == (1, 1)
    return settings


def test_tokens_and_history_survive_a_move_to_another_store(
    backend: str, origin: Settings, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    before = admin.show(origin, "ada@example.org")
    document = export_all(origin, now=RUN_AT)
    assert (document["format"], document["version"]) == (FORMAT, VERSION)
    path = tmp_path / "subscribers.json"
    path.write_text(json.dumps(document))
    (sent,) = _sent_keys(origin, "ada@example.org")
    assert sent

    target = make_settings(data_dir=tmp_path / "target")  # PostgreSQL on that backend
    result = import_file(target, path, update=False, now=RUN_AT)
    assert result.subscribers.added == ["ada@example.org", "rosalind@example.org"]
    assert (result.digests, result.items, result.papers) == (2, len(sent), len(sent))

    after = admin.show(target, "ada@example.org")
    for link in ("feed_urls", "unsubscribe_url", "manage_url"):
        assert after[link] == before[link]  # every link already mailed keeps working
    assert {k: v for k, v in after.items() if k != "max_items"} == {
        k: v for k, v in before.items() if k != "max_items"
    }
    assert _sent_keys(target, "ada@example.org") == [sent]

    # The same listings come in again on the new host, later; the next digest must not
    # bring back what ada already received, and today's period is not sent twice.
    assert run_digests(target, now=RUN_AT + timedelta(hours=1)).due == 0
    import_files(target, SAMPLE, now=RUN_AT + timedelta(hours=12))
    run_digests(target, now=RUN_AT + timedelta(days=1))
    history = _sent_keys(target, "ada@example.org")
    assert history[0] == sent
    assert not set(sent) & {key for later in history[1:] for key in later}

    # Importing the file again changes nothing.
    again = import_file(target, path, update=True, now=RUN_AT)
    assert (again.digests, again.items, again.papers) == (0, 0, 0)
    assert again.subscribers.unchanged == ["ada@example.org", "rosalind@example.org"]


def test_export_and_show_json_use_the_same_names(origin: Settings) -> None:
    document = export_all(origin, now=RUN_AT)
    ada = next(s for s in document["subscribers"] if s["email"] == "ada@example.org")
    shown = admin.show(origin, "ada@example.org")
    account = {"token", "created_at", "confirmed_at", "unsubscribed_at", "bounce_count"}
    assert set(ada) - {"digests"} - account <= set(shown)
    assert (ada["excludes"], ada["required"]) == (shown["excludes"], shown["required"])
    assert ada["weekday"] == shown["weekday"]
    assert "exclude" not in ada and "require" not in ada
    assert ada["token"] in shown["unsubscribe_url"]


def test_version_1_lists_and_singular_keys_are_still_read(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "old.json"
    path.write_text(
        json.dumps(
            [
                {
                    "email": "ada@example.org",
                    "keywords": ["diffusion"],
                    "exclude": ["survey"],
                    "require": ["image"],
                    "weekday": 4,
                }
            ]
        )
    )
    result = import_file(settings, path, update=False, now=RUN_AT)
    assert result.subscribers.added == ["ada@example.org"]
    shown = admin.show(settings, "ada@example.org")
    assert (shown["excludes"], shown["required"], shown["weekday"]) == (
        ["survey"],
        ["image"],
        "friday",
    )


def _document(**subscriber: Any) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "subscribers": [{"email": "ada@example.org", "keywords": ["robots"], **subscriber}],
        "papers": {},
    }


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({**_document(), "version": 3}, "written by a newer paper-digest (export version 3)"),
        (_document(token="short"), "token: must be a subscriber token"),
        (_document(hour="8"), 'hour: must be a whole number from 0 to 23, not "8"'),
        (
            _document(digests=[{"period": "2026-W47", "label": "x", "status": "sent"}]),
            "subscribers[0].digests[0].window_start: Field required",
        ),
        (
            _document(
                digests=[
                    {
                        "period": "2026-W47",
                        "label": "x",
                        "status": "sending",
                        "window_start": "2026-11-16T08:00:00+00:00",
                        "window_end": "2026-11-23T08:00:00+00:00",
                        "created_at": "2026-11-23T08:00:00+00:00",
                    }
                ]
            ),
            "digests[0].status: String should match pattern",
        ),
        (
            _document(
                digests=[
                    {
                        "period": "2026-W47",
                        "label": "x",
                        "status": "sent",
                        "window_start": "2026-11-16T08:00:00+00:00",
                        "window_end": "2026-11-23T08:00:00+00:00",
                        "created_at": "2026-11-23T08:00:00+00:00",
                        "items": [{"paper": "arxiv:2411.00001", "rank": 1, "score": 1.0}],
                    }
                ]
            ),
            "a digest names paper 'arxiv:2411.00001', which is neither in the file's papers",
        ),
        ({"format": "something else"}, "not a subscriber export of paper-digest"),
    ],
)
def test_bad_exports_change_nothing(
    document: dict[str, Any], message: str, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ProfileError) as info:
        import_file(settings, path, update=False, now=RUN_AT)
    assert message in str(info.value)
    with db.transaction(settings) as session:
        assert session.execute(select(Subscriber)).first() is None


def test_a_token_that_belongs_to_someone_else_is_refused(origin: Settings, tmp_path: Path) -> None:
    document = export_all(origin, now=RUN_AT)
    rosalind = admin.show(origin, "rosalind@example.org")
    token = rosalind["unsubscribe_url"].rsplit("/", 1)[1]
    ada = next(s for s in document["subscribers"] if s["email"] == "ada@example.org")
    ada["token"] = token
    document["subscribers"] = [ada]
    path = tmp_path / "clash.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ProfileError, match=r"already belongs to subscriber rosalind@example\.org"):
        import_file(origin, path, update=True, now=RUN_AT)


def test_the_cli_round_trip(
    origin: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_DATA_DIR", str(origin.data_dir))
    monkeypatch.setenv("DIGEST_BASE_URL", origin.base_url)
    runner = CliRunner()
    path = tmp_path / "subs.json"
    exported = runner.invoke(app, ["subscribers", "export", "-o", str(path)])
    assert exported.exit_code == 0, exported.output
    assert "exported 2 subscriber(s), 2 digest(s) and" in exported.stdout
    monkeypatch.setenv("DIGEST_DATA_DIR", str(tmp_path / "fresh"))
    imported = runner.invoke(app, ["subscribers", "import", str(path)])
    assert imported.exit_code == 0, imported.output
    assert imported.stdout.startswith("added 2, updated 0, unchanged 0; history: 2 digest(s)")
    shown = runner.invoke(app, ["subscribers", "show", "ada@example.org", "--json"])
    assert (
        json.loads(shown.stdout)["feed_urls"] == admin.show(origin, "ada@example.org")["feed_urls"]
    )
