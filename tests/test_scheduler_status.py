"""``digest status [--json]``: sources, next deliveries, the scheduler, runs, failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from digest.cli import app
from digest.config.settings import Settings
from digest.scheduler.service import SchedulerService
from digest.sources.fetcher import fetch_all
from digest.testing.smtp import SmtpSink
from tests.scheduler_support import FakeClock, add_papers, subscribe, utc

LISTING = Path(__file__).parent / "data" / "listings" / "hf" / "daily_papers.json"
NOW = utc(2026, 11, 23, 9, 30)  # Monday


def test_status_json_reports_sources_next_deliveries_runs_and_failures(
    backend: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    with SmtpSink() as sink:
        settings = make_settings(
            delivery="smtp",
            smtp_host=sink.host,
            smtp_port=sink.port,
            smtp_retries=0,
            smtp_connections=1,  # in order: the first RCPT is ada's
            sources=[
                {"name": "hf-drop", "kind": "file", "url": str(LISTING)},
                {"name": "gone", "kind": "file", "url": str(tmp_path / "missing.json")},
            ],
        )
        report = fetch_all(settings, now=NOW - timedelta(hours=2))
        assert [s.status for s in report.sources] == ["ok", "error"]
        add_papers(settings, now=NOW - timedelta(hours=1), count=2)
        joined = NOW - timedelta(hours=3)  # after yesterday's send times: nothing to catch up
        subscribe(settings, "ada@example.org", hour=8, at=joined)  # refused by the server
        subscribe(settings, "bob@example.org", hour=7, at=joined)  # daily, UTC: due at 07:00
        subscribe(settings, "cy@example.org", hour=11, timezone="Europe/Berlin", at=joined)
        subscribe(
            settings,
            "dee@example.org",
            frequency="weekly",
            weekday=2,
            hour=6,
            timezone="America/New_York",
            at=joined,
        )
        sink.fail_next(550, stage="rcpt", text="5.1.1 no such user")  # the first: ada
        service = SchedulerService(settings, clock=FakeClock(NOW), holder="host:1:abc")
        assert service.heartbeat()
        result = service.run_deliver()
        assert result is not None and result.report is not None
        assert (result.report.sent, result.report.failed) == (1, 1)

    runner = CliRunner()
    env = {"DIGEST_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["DIGEST_DATABASE_URL"] = settings.database_url
    later = (NOW + timedelta(minutes=45)).isoformat()  # 10:15 UTC: cy's 11:00 Berlin passed
    result = runner.invoke(app, ["status", "--json", "--now", later], env=env)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert {"sources", "next_deliveries", "runs", "failed_deliveries", "scheduler"} <= set(info)

    sources = info["sources"]
    assert sources["hf-drop"]["papers"] == 3 and sources["hf-drop"]["last_error"] is None
    assert sources["hf-drop"]["last_success"] == (NOW - timedelta(hours=2)).isoformat()
    assert sources["gone"]["papers"] == 0 and sources["gone"]["last_success"] is None
    assert "missing.json" in sources["gone"]["last_error"]
    assert sources["test-listing"]["papers"] == 2  # imported by hand: from its sightings

    upcoming = [(d["email"], d["period"], d["send_at"]) for d in info["next_deliveries"]]
    assert upcoming == [
        ("cy@example.org", "daily:2026-11-23", "2026-11-23T10:00:00+00:00"),  # 11:00 Berlin
        ("bob@example.org", "daily:2026-11-24", "2026-11-24T07:00:00+00:00"),
        ("ada@example.org", "daily:2026-11-24", "2026-11-24T08:00:00+00:00"),
        ("dee@example.org", "weekly:2026-W48", "2026-11-25T11:00:00+00:00"),  # Wed 06:00 EST
    ]
    assert info["next_deliveries"][0]["overdue"] is True  # passed, the next run sends it
    assert info["next_deliveries"][3]["local_send_at"] == "2026-11-25T06:00:00-05:00"

    (failed,) = info["failed_deliveries"]
    assert failed["email"] == "ada@example.org" and "no such user" in failed["error"]
    assert failed["next_attempt_at"] is None  # permanent: not retried
    assert [r["kind"] for r in info["runs"]] == ["deliver", "fetch", "fetch"]
    assert info["runs"][0]["new"] == 1
    # the service heartbeated at 09:30 with a 60 s lease: at 10:15 nobody runs the jobs
    assert info["scheduler"]["holder"] == "host:1:abc" and info["scheduler"]["active"] is False

    text = runner.invoke(app, ["status", "--now", later], env=env, terminal_width=200)
    assert text.exit_code == 0, text.output
    for expected in ("hf-drop", "gone", "now (overdue)", "dee@example.org", "not running"):
        assert expected in text.output
