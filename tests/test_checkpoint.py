"""A bulk transaction committed without its WAL checkpoint (digest/store/checkpoint.py).

SQLite: the held commit leaves its pages in the log, the checkpoint thread copies all of
them, and the pooled connection gets its automatic checkpoint back; a run still records
and sends as before. PostgreSQL: nothing to hold, no thread.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from digest.config.settings import Settings
from digest.runner import run_digests
from digest.store import db
from digest.store.checkpoint import Checkpoint
from tests.scheduler_support import add_papers, subscribe

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
PAGES = 1_500  # more than wal_autocheckpoint's default 1,000 pages: a commit would checkpoint


def _big_commit(settings: Settings, checkpoint: Checkpoint | None) -> None:
    with db.transaction(settings) as session:
        if checkpoint is not None:
            checkpoint.hold(session)
        session.execute(text("CREATE TABLE IF NOT EXISTS filler (data BLOB)"))
        session.execute(text("INSERT INTO filler VALUES (randomblob(:n))"), {"n": PAGES * 4096})


def _log(settings: Settings) -> tuple[int, int]:
    """(frames in the WAL, frames of it copied into the database), read from the WAL index
    (the ``-shm`` file, https://sqlite.org/walformat.html: the header's ``mxFrame`` at byte
    16, the checkpoint information's ``nBackfill`` at byte 96, native byte order), without
    checkpointing anything (this SQLite has no ``wal_checkpoint(NOOP)``)."""
    shm = (Path(settings.data_dir) / "digest.sqlite3-shm").read_bytes()
    (log,) = struct.unpack_from("=I", shm, 16)
    (copied,) = struct.unpack_from("=I", shm, 96)
    return log, copied


def _autocheckpoint(settings: Settings) -> int:
    with db.transaction(settings) as session:
        return int(session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint").scalar())


def test_a_commit_checkpoints_as_before_without_a_hold(settings: Settings) -> None:
    _big_commit(settings, None)
    log, copied = _log(settings)
    assert log >= PAGES and copied == log  # the commit copied the whole log


def test_a_held_commit_leaves_the_log_to_the_thread(settings: Settings) -> None:
    engine = db.get_engine(settings)
    checkpoint = Checkpoint(engine)
    _big_commit(settings, checkpoint)
    log, copied = _log(settings)
    assert log >= PAGES and copied < log  # committed, not copied
    assert _autocheckpoint(settings) == 1000  # the pooled connection got its setting back
    checkpoint.start()
    checkpoint.wait()
    log_after, copied_after = _log(settings)
    assert copied_after == log_after >= log  # all of it is in the database file now
    with db.transaction(settings) as session:
        assert session.execute(text("SELECT count(*) FROM filler")).scalar() == 1


def test_postgresql_has_nothing_to_hold(
    make_settings: Callable[..., Settings], backend: str
) -> None:
    settings = make_settings()
    engine = db.get_engine(settings)
    checkpoint = Checkpoint(engine)
    with db.transaction(settings) as session:
        checkpoint.hold(session)
    checkpoint.start()
    checkpoint.wait()
    assert (checkpoint._thread is None) == (backend == "postgres")


def test_a_run_with_a_held_checkpoint_sends_what_it_recorded(
    make_settings: Callable[..., Settings], backend: str, tmp_path: Path
) -> None:
    """The run's phase 1 commit holds its checkpoint; the fence waits for it, and the run
    records and sends as it did (both backends)."""
    settings = make_settings(delivery="outbox", outbox_dir=tmp_path / "outbox")
    add_papers(settings, now=NOW - timedelta(hours=3), count=3)
    for i in range(3):
        subscribe(settings, f"reader{i:02d}@example.org", at=NOW - timedelta(days=2))
    report = run_digests(settings, now=NOW)
    assert (report.due, report.sent) == (3, 3)
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == 3
