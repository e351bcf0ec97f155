"""Real ``digest serve --no-web`` / ``digest scheduler`` processes against one database.

Two processes: one leads, one waits; killing the leader hands over to the other; no digest
is made or sent twice. One process: SIGTERM in the middle of a deliver run lets the run
finish and exits cleanly. Every process is bounded in time and killed in a ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlmodel import col

from digest.config.settings import Settings
from digest.scheduler.lease import read_lease
from digest.store import db
from digest.store.models import Run
from digest.subscribers.library import ProfileSpec, SubscriberFields, add_subscriber
from digest.testing.smtp import SmtpSink
from tests.scheduler_support import add_papers, digests, outbox_files

DIGEST = Path(sys.executable).parent / "digest"
FAST = {
    "DIGEST_SCHEDULER_DELIVER_INTERVAL": "0.3",
    "DIGEST_SCHEDULER_HEARTBEAT": "0.25",
    "DIGEST_SCHEDULER_LEASE_TTL": "1.5",
    "DIGEST_SCHEDULER_FETCH_CRON": "off",
    "DIGEST_LOG_JSON": "1",
}


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(FAST)
    env.update(
        DIGEST_DATA_DIR=str(settings.data_dir),
        DIGEST_BASE_URL=settings.base_url,
        DIGEST_MAIL_FROM=settings.mail_from,
        **extra,
    )
    if settings.database_url:
        env["DIGEST_DATABASE_URL"] = settings.database_url
    return env


@contextmanager
def processes(
    commands: list[list[str]], env: dict[str, str], logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start ``digest <command>`` for each command; whatever happens, none outlives the test."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        for index, command in enumerate(commands):
            with (logs / f"process-{index}.log").open("wb") as log:  # the child keeps a copy
                started.append(
                    subprocess.Popen(
                        [str(DIGEST), *command], env=env, stdout=log, stderr=subprocess.STDOUT
                    )
                )
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def subscribe_many(settings: Settings, emails: list[str], *, at: datetime) -> None:
    """Daily subscribers at 00:00 UTC: due whenever the test runs."""
    with db.transaction(settings) as session:
        for email in emails:
            add_subscriber(
                session,
                email=email,
                profile=ProfileSpec(keywords=["transformer"]),
                fields=SubscriberFields(frequency="daily", hour=0, timezone="UTC"),
                settings=settings,
                now=at,
            )


def sent_count(settings: Settings) -> int:
    return sum(1 for _, d in digests(settings) if d.status == "sent")


def leader_pid(settings: Settings) -> int | None:
    with db.transaction(settings) as session:
        state = read_lease(session)
    if state is None or state.expires_at <= datetime.now(UTC):
        return None
    return int(state.holder.split(":")[1])


def events(log: Path) -> list[str]:
    """The messages of the JSON log lines a process wrote (other lines are not ours)."""
    messages = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            messages.append(str(json.loads(line)["message"]))
    return messages


def test_two_schedulers_one_leader_takeover_and_nothing_twice(
    backend: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    now = datetime.now(UTC)
    add_papers(settings, now=now - timedelta(hours=1), count=3)
    subscribe_many(settings, [f"first{i}@example.org" for i in range(6)], at=now - timedelta(1))
    commands = [["scheduler"], ["serve", "--no-web"]]
    with processes(commands, child_env(settings), tmp_path) as (one, two):
        wait_until(lambda: sent_count(settings) == 6, timeout=30, what="the first digests")
        leader = leader_pid(settings)
        assert leader in (one.pid, two.pid)
        old, new = (one, two) if leader == one.pid else (two, one)
        assert old.poll() is None and new.poll() is None  # the standby waits, it does not exit

        # SQLite: a clean stop hands over at once. PostgreSQL: a crash; the standby waits out
        # the lease's TTL.
        old.send_signal(signal.SIGTERM if backend == "sqlite" else signal.SIGKILL)
        assert old.wait(timeout=15) == (0 if backend == "sqlite" else -signal.SIGKILL)
        subscribe_many(settings, [f"later{i}@example.org" for i in range(4)], at=now)
        wait_until(lambda: sent_count(settings) == 10, timeout=30, what="the takeover")
        assert leader_pid(settings) == new.pid
        time.sleep(0.6)  # a couple more deliver runs: still nothing new
        assert new.poll() is None

    made = digests(settings)
    assert len(made) == 10 and len({email for email, _ in made}) == 10
    assert all(d.status == "sent" and d.attempts == 1 for _, d in made)  # one hand-over each
    files = outbox_files(settings)
    assert len(files) == 10
    ids = {message_from_bytes(f.read_bytes())["Message-ID"] for f in files}
    assert ids == {d.message_id for _, d in made}
    old_log = tmp_path / f"process-{[one, two].index(old)}.log"
    new_log = tmp_path / f"process-{[one, two].index(new)}.log"
    assert any(m.startswith("lease acquired") for m in events(old_log))
    assert any(m.startswith("standby:") for m in events(new_log))
    assert any(m.startswith("lease acquired") for m in events(new_log))
    assert any(m.startswith("deliver done") and "sent=4" in m for m in events(new_log))


def test_sigterm_during_a_deliver_run_finishes_it_and_exits(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    now = datetime.now(UTC)
    add_papers(settings, now=now - timedelta(hours=1), count=5)
    total = 80
    subscribe_many(settings, [f"reader{i}@example.org" for i in range(total)], at=now)
    # A relay taking 20 ms a message over one connection: the run lasts over a second, so
    # the signal lands in the middle of it.
    with SmtpSink(data_delay=0.02) as sink:
        env = child_env(
            settings,
            DIGEST_DELIVERY="smtp",
            DIGEST_SMTP_HOST=sink.host,
            DIGEST_SMTP_PORT=str(sink.port),
            DIGEST_SMTP_CONNECTIONS="1",
        )
        with processes([["scheduler"]], env, tmp_path) as (process,):
            wait_until(lambda: sent_count(settings) > 0, timeout=30, what="the first message")
            at_signal = sent_count(settings)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        received = [m.message["Message-ID"] for m in sink.messages]
    assert at_signal < total  # the signal came in the middle of the run
    made = digests(settings)
    assert len(made) == total
    assert all(d.status == "sent" and d.attempts == 1 for _, d in made)  # none half-done
    assert sorted(received) == sorted(d.message_id for _, d in made)  # each once
    with db.transaction(settings) as session:
        runs = session.execute(select(Run).where(col(Run.kind) == "deliver")).scalars().all()
        lease = read_lease(session)
    assert [(r.status, r.new_count) for r in runs] == [("ok", total)]
    assert lease is not None and lease.expires_at <= datetime.now(UTC)  # released on exit
    messages = events(tmp_path / "process-0.log")
    assert "SIGTERM received: finishing the running job, then exiting" in messages
    assert messages[-2:] == [
        f"lease released by {lease.holder}",
        f"scheduler {lease.holder} stopped",
    ]


def test_serve_runs_the_web_app_beside_the_scheduler_and_stops_on_sigterm(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    with socket.socket() as probe:  # a free port on loopback
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    with processes([command], child_env(settings), tmp_path) as (process,):

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=30, what="the web app")
        wait_until(lambda: leader_pid(settings) == process.pid, timeout=30, what="the lease")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert leader_pid(settings) is None  # released on the way out
    messages = events(tmp_path / "process-0.log")
    assert any(m.startswith("lease acquired") for m in messages)
    assert messages[-1].startswith("scheduler ") and messages[-1].endswith(" stopped")
