"""Claimants: the live processes that hold claims on digests.

A ``digest run`` or a queue worker registers one :class:`~digest.store.models.Claimant` row
before it claims anything, renews its heartbeat on the **database clock** while it lives
(a thread, every :data:`HEARTBEAT`), and ends it when done. A digest it marked ``sending``
stays its own exactly as long as it is alive:

- its heartbeat is older than :data:`CLAIM_TTL` (another host can only judge by that), or
- it ended (a clean exit hands its unfinished claims back at once), or
- it ran on this host and its process is gone (a pid that no longer exists, or exists but
  started at another time: a reused pid), which :func:`reap_local` notices at once.

Then its ``sending`` digests are ready to be taken over (``ledger.ready``). A run that has
been sending for an hour keeps its claims; a crashed one loses them within seconds when the
next run starts on the same host, and within :data:`CLAIM_TTL` elsewhere.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from sqlalchemy import ColumnElement, or_, select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from digest.store import db
from digest.store.models import Claimant

log = logging.getLogger(__name__)

HEARTBEAT = timedelta(seconds=5)
CLAIM_TTL = timedelta(seconds=30)  # six missed heartbeats: the claimant is dead


def db_now(session: Session) -> datetime:
    """The database's clock (PostgreSQL: the server's; SQLite: this machine's, the only one)."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.execute(text("SELECT now()")).scalar_one()
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
    return datetime.now(UTC)


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), to tell a reused pid apart;
    None where ``/proc`` is not available or the process does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may contain spaces
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None  # field 22: starttime


def process_alive(pid: int, started: str | None = None) -> bool:
    """Whether process ``pid`` of this host exists (and is the one started at ``started``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return started is None or process_start(pid) in (None, started)


def dead(stale_before: datetime) -> ColumnElement[bool]:
    """Claimants whose claims are void: ended, or silent since ``stale_before``."""
    return or_(col(Claimant.ended_at).is_not(None), col(Claimant.heartbeat_at) < stale_before)


def reap_local(session: Session, *, now: datetime) -> int:
    """End the claimants of this host whose process is gone; how many."""
    host = socket.gethostname()
    rows = session.execute(
        select(col(Claimant.id), col(Claimant.pid), col(Claimant.process_start)).where(
            col(Claimant.host) == host, col(Claimant.ended_at).is_(None)
        )
    ).all()
    gone = [claimant for claimant, pid, started in rows if not process_alive(pid, started)]
    if gone:
        session.execute(update(Claimant).where(col(Claimant.id).in_(gone)).values(ended_at=now))
        log.info("claimants %s on this host are gone: their claims are void", gone)
    return len(gone)


class ClaimantLease:
    """This process as a claimant: registered on ``__enter__``, heartbeat in a thread, ended
    on ``__exit__`` (which voids whatever it still claims)."""

    def __init__(self, engine: Engine, *, kind: str) -> None:
        self.engine, self.kind = engine, kind
        self.id: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        with db.transaction(self.engine) as session:
            now = db_now(session)
            reap_local(session, now=now)
            row = Claimant(
                kind=self.kind,
                host=socket.gethostname(),
                pid=os.getpid(),
                process_start=process_start(os.getpid()),
                started_at=now,
                heartbeat_at=now,
            )
            session.add(row)
            session.flush()
            self.id = row.id
        self._thread = threading.Thread(
            target=self._beat, name=f"claimant-{self.id}-heartbeat", daemon=True
        )
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT.total_seconds()):
            try:
                self.beat()
            except Exception:  # a missed beat is survivable; six in a row are not
                log.exception("claimant %s: heartbeat failed", self.id)

    def beat(self) -> None:
        """Renew the heartbeat now."""
        with db.transaction(self.engine) as session:
            session.execute(
                update(Claimant)
                .where(col(Claimant.id) == self.id)
                .values(heartbeat_at=db_now(session))
            )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            with db.transaction(self.engine) as session:
                session.execute(
                    update(Claimant)
                    .where(col(Claimant.id) == self.id)
                    .values(ended_at=db_now(session))
                )
        except Exception:  # the store is gone: the heartbeat going stale ends it anyway
            log.exception("claimant %s: could not record its end", self.id)
