"""Scale-out on PostgreSQL: a run defers delivery batches, `digest worker` processes send.

Real PostgreSQL (a schema per test), real worker processes, a real SMTP server. The run
defers its batches in the transaction that records the digests; workers claim, render,
send and record; a worker killed with SIGKILL mid-batch is detected by the others, its job
re-queued and finished, and nothing but the messages in flight at the kill is sent twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlmodel import col

from digest.config.settings import Settings
from digest.delivery.pipeline import FLUSH_EVERY
from digest.runner import run_digests
from digest.store import db
from digest.store.models import Digest
from digest.testing.smtp import SmtpSink
from tests.scheduler_support import add_papers, subscribe

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BATCH = 5


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink(data_delay=0.02) as server:  # ~50 messages/s: a batch takes a while
        yield server


@pytest.fixture
def queued(postgres_url: str, make_settings: Callable[..., Settings], sink: SmtpSink) -> Settings:
    return make_settings(
        database_url=postgres_url,
        queue="procrastinate",
        delivery="smtp",
        smtp_host=sink.host,
        smtp_port=sink.port,
        delivery_batch=BATCH,
    )


def subscribers(settings: Settings, count: int) -> None:
    add_papers(settings, now=NOW - timedelta(hours=3), count=4)
    for i in range(count):
        subscribe(settings, f"reader{i:03d}@example.org", at=NOW - timedelta(days=2))


def env_of(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_DATA_DIR=str(settings.data_dir),
        DIGEST_DATABASE_URL=str(settings.database_url),
        DIGEST_BASE_URL=settings.base_url,
        DIGEST_MAIL_FROM=settings.mail_from,
        DIGEST_DELIVERY="smtp",
        DIGEST_SMTP_HOST=settings.smtp_host,
        DIGEST_SMTP_PORT=str(settings.smtp_port),
        DIGEST_SMTP_RETRY_WAIT="0",
        DIGEST_QUEUE="procrastinate",
        DIGEST_DELIVERY_BATCH=str(BATCH),
    )
    return env


@contextmanager
def workers(
    settings: Settings, count: int, tmp_path: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    digest = str(Path(sys.executable).with_name("digest"))
    started: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for n in range(count):
            logs.append((tmp_path / f"worker-{n}.log").open("wb"))
            started.append(
                subprocess.Popen(
                    [digest, "worker", "--concurrency", "1"],
                    env=env_of(settings),
                    stdout=logs[-1],
                    stderr=subprocess.STDOUT,
                )
            )
        yield started
    finally:
        for log in logs:
            log.close()
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def counts(settings: Settings) -> dict[str, int]:
    with db.transaction(settings) as session:
        rows = session.execute(
            select(col(Digest.status), func.count()).group_by(col(Digest.status))
        ).all()
    return {str(status): int(n) for status, n in rows}


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_run_defers_batches_in_its_transaction_and_workers_send_them(
    queued: Settings, sink: SmtpSink, tmp_path: Path
) -> None:
    subscribers(queued, 12)
    report = run_digests(queued, now=NOW)
    assert (report.due, report.sent, report.deferred_jobs) == (12, 0, 3)  # 12 / BATCH
    assert counts(queued) == {"pending": 12}
    # The report says what the workers will send (the CLI's table and --json show it).
    assert report.queued == 12
    assert {d.status for d in report.digests} == {"queued"}
    assert all(d.items > 0 and d.top_title for d in report.digests)
    with db.transaction(queued) as session:
        jobs = session.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
        ).scalar_one()
    assert jobs == 3
    # A second run finds the batches already queued: nothing more is deferred.
    assert run_digests(queued, now=NOW).deferred_jobs == 0
    with workers(queued, 1, tmp_path):
        wait_for(lambda: counts(queued) == {"sent": 12}, timeout=60, what="12 sent digests")
    ids = Counter(m.message["Message-ID"] for m in sink.messages)
    assert len(ids) == 12 and set(ids.values()) == {1}


def test_a_worker_killed_mid_batch_is_finished_by_another(
    queued: Settings, sink: SmtpSink, tmp_path: Path
) -> None:
    total = 60
    subscribers(queued, total)
    assert run_digests(queued, now=NOW).deferred_jobs == total // BATCH
    with workers(queued, 2, tmp_path) as (victim, survivor):
        wait_for(lambda: len(sink.messages) >= 10, timeout=60, what="the first messages")
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = time.monotonic()
        wait_for(lambda: counts(queued) == {"sent": total}, timeout=90, what="every digest sent")
        took = time.monotonic() - killed_at
        assert survivor.poll() is None
    with db.transaction(queued) as session:
        recorded = set(session.execute(select(col(Digest.message_id))).scalars())
    received = Counter(m.message["Message-ID"] for m in sink.messages)
    assert set(received) == recorded  # nobody lost
    duplicates = sum(n - 1 for n in received.values())
    # Only what the dead worker had handed over without recording it yet can come twice.
    assert duplicates <= min(FLUSH_EVERY, BATCH)
    assert took < 60, f"the dead worker's batch took {took:.0f} s to finish"
