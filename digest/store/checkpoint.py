"""SQLite: a bulk transaction committed without waiting for its WAL checkpoint.

In WAL mode a commit appends to the write-ahead log; the commit that takes the log past
``wal_autocheckpoint`` pages (1,000 by default) also copies it into the database file and
syncs both, while the committer waits. After a weekly run's phase 1 (100,000 digests, 1.9
million items: a few hundred MB of log) that was 1.7 s of the run's critical path.

:class:`Checkpoint` lets an entry point commit such a transaction with the automatic
checkpoint held (:meth:`Checkpoint.hold`), then checkpoint in a thread (:meth:`~Checkpoint.start`)
while it goes on, e.g. starting its renderers. What "committed before sent" needs stays
true: :meth:`~Checkpoint.wait` returns once the commit is on disk (the log checkpointed and
synced, and the log file itself synced, in case a reader that began before the commit kept
part of it from being copied), and an entry point waits before the first message leaves.
On PostgreSQL a commit is durable when it returns: nothing to do.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import suppress
from pathlib import Path
from typing import Self

from sqlalchemy.engine import Engine
from sqlmodel import Session

HELD = "wal_autocheckpoint_held"  # a pooled connection's info key: the value to restore


class Checkpoint:
    """One SQLite transaction's commit, made durable in a thread (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        database = engine.url.database
        sqlite = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        self._path = Path(database) if sqlite and database else None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def hold(self, session: Session) -> None:
        """The commit of ``session``'s transaction does not checkpoint: :meth:`start` does,
        once it is committed. (The connection gets its setting back when the pool takes it
        back: :func:`digest.store.db.create_db_engine`.)"""
        if self._path is None:
            return
        connection = session.connection()
        fairy = connection.connection
        if HELD not in fairy.info:
            fairy.info[HELD] = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")

    def start(self) -> None:
        """Checkpoint the committed log and sync it, in a thread."""
        if self._path is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._path is not None
        try:
            # Its own connection: the pool's belong to their threads. PASSIVE: readers and
            # writers (the run's claims) go on meanwhile.
            connection = sqlite3.connect(self._path, timeout=30)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()
            with suppress(FileNotFoundError):  # no log left: all of it is in the database
                fd = os.open(f"{self._path}-wal", os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except BaseException as exc:  # handed to the waiter, re-raised there
            self._error = exc

    def wait(self) -> None:
        """Return once the commit is on disk; raise what the checkpoint raised."""
        self.join()
        if self._error is not None:
            raise self._error

    def join(self) -> None:
        """Wait for the thread, if one runs (errors are for :meth:`wait`)."""
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()  # no thread outlives its user
