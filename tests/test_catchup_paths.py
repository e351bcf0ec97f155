"""``digest run`` by hand catches up a missed period exactly like the scheduler does.

Two stores get the same history: a weekly subscriber whose Monday 08:00 send time passed
while nothing ran, papers arriving before and after it. At the same ``now`` (Wednesday),
one store runs ``digest run --now`` through the CLI, the other the scheduler's deliver job.
Both must record and send the same digests: the missed week's, covering everything since
the previous digest, with the same papers, ranks and Message-IDs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from digest.config.settings import Settings
from digest.scheduler.jobs import deliver_job
from digest.store import db
from digest.store.models import Digest, DigestItem, Paper
from tests.conftest import Cli
from tests.scheduler_support import add_papers, outbox_files, subscribe, utc

FRIDAY = utc(2026, 11, 27)  # the missed send day (Friday 08:00 UTC, ISO week 48)
NOW = utc(2026, 12, 2, 12, 0)  # Wednesday of week 49: this week's Friday has not come yet
WEEKLY_FRIDAY = {"frequency": "weekly", "weekday": 4}


def history(settings: Settings) -> None:
    """A subscriber since two weeks, a digest last week, papers through the outage."""
    subscribe(settings, "ada@example.org", **WEEKLY_FRIDAY, at=FRIDAY - timedelta(days=14))
    # Joined after the missed send time: nothing to catch up for her, by either path.
    subscribe(settings, "grace@example.org", **WEEKLY_FRIDAY, at=FRIDAY + timedelta(hours=21))
    add_papers(settings, now=FRIDAY - timedelta(days=8), tag="a")
    job = deliver_job(settings, now=FRIDAY - timedelta(days=7) + timedelta(hours=1))
    assert job.report is not None and job.report.sent == 1  # ada's week 47 digest
    for hours in (-30, -2, 5, 30):  # before and after the missed send time
        add_papers(settings, now=FRIDAY + timedelta(hours=hours), tag=str(hours))


def recorded(settings: Settings) -> list[dict[str, Any]]:
    """Each digest as comparable data: period, window, status and its papers in rank order."""
    with db.transaction(settings) as session:
        rows = []
        for digest in session.execute(select(Digest).order_by(col(Digest.id))).scalars():
            papers = session.execute(
                select(col(Paper.key))
                .join(DigestItem, col(DigestItem.paper_id) == col(Paper.id))
                .where(col(DigestItem.digest_id) == digest.id)
                .order_by(col(DigestItem.rank))
            ).scalars()
            rows.append(
                {
                    "subscriber": digest.subscriber_id,
                    "period": digest.period_key,
                    "status": digest.status,
                    "window": (digest.window_start, digest.window_end),
                    "papers": list(papers),
                    "message_id": digest.message_id,
                    "subject": digest.subject,
                }
            )
    return rows


def sent_messages(settings: Settings) -> list[tuple[str, str]]:
    out = []
    for path in outbox_files(settings):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        out.append((str(message["Message-ID"]), str(message["Subject"])))
    return sorted(out)


def test_manual_run_and_scheduler_catch_up_the_same_digests(
    make_settings: Callable[..., Settings],
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_hand = make_settings(data_dir=tmp_path / "by-hand")
    scheduled = make_settings(data_dir=tmp_path / "scheduled")
    for settings in (by_hand, scheduled):
        history(settings)

    monkeypatch.setenv("DIGEST_DATA_DIR", str(by_hand.data_dir))
    monkeypatch.setenv("DIGEST_BASE_URL", by_hand.base_url)
    monkeypatch.setenv("DIGEST_MAIL_FROM", by_hand.mail_from)
    report = Cli().json("run", "--now", NOW.isoformat())
    assert (report["due"], report["sent"], report["caught_up"]) == (1, 1, 1)
    job = deliver_job(scheduled, now=NOW)
    assert job.caught_up == 1 and job.report is not None and job.report.sent == 1

    mine, theirs = recorded(by_hand), recorded(scheduled)
    assert mine == theirs
    missed = mine[-1]
    assert missed["period"] == "weekly:2026-W48" and missed["status"] == "sent"
    # The missed week's digest covers everything since the previous digest, through now.
    assert missed["window"] == (mine[0]["window"][1], NOW)
    assert len(missed["papers"]) == 4
    assert sent_messages(by_hand) == sent_messages(scheduled)
    assert {row["subscriber"] for row in mine} == {1}  # ada's two digests, none for grace


def test_nothing_missed_means_nothing_sent(
    make_settings: Callable[..., Settings], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subscriber who joined after the last send time has nothing to catch up."""
    settings = make_settings()
    subscribe(settings, "ada@example.org", **WEEKLY_FRIDAY, at=FRIDAY + timedelta(hours=9))
    add_papers(settings, now=FRIDAY + timedelta(hours=10))
    monkeypatch.setenv("DIGEST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DIGEST_BASE_URL", settings.base_url)
    report = Cli().json("run", "--now", NOW.isoformat())
    assert (report["due"], report["sent"], report["caught_up"]) == (0, 0, 0)
    assert deliver_job(settings, now=NOW).idle
