"""The scheduler lease: exactly one process runs the jobs, the others wait on standby.

One ``scheduler_lease`` row per lease name. Taking or renewing it is a single atomic
statement on SQLite and PostgreSQL alike::

    INSERT INTO scheduler_lease (name, holder, …, expires_at) VALUES (…)
    ON CONFLICT (name) DO UPDATE SET holder = …, expires_at = …
        WHERE scheduler_lease.expires_at < :now OR scheduler_lease.holder = :me
    RETURNING holder, acquired_at, expires_at

A row comes back only when this process holds the lease afterwards, so two processes racing
for an expired lease cannot both win (PostgreSQL re-checks the WHERE against the row it
locked; SQLite serializes writers). Times come from the caller's clock: hosts sharing a
database need synchronized clocks (NTP), well within the TTL.

The holder also remembers, in memory, until when its lease is valid. Jobs and each send check
that (:meth:`Lease.ensure`, which renews on the spot when heartbeats were held up) so a
leader that can no longer renew stops before anyone else may take over.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col

from digest.errors import DigestError
from digest.store import db
from digest.store.models import SchedulerLease
from digest.store.papers import dialect_insert

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
# A leader stops sending this long before its lease runs out, to absorb clock skew between
# hosts and the time between a check and the send it guards.
SAFETY_MARGIN = timedelta(seconds=1)


class LeaseLostError(DigestError):
    """This process no longer holds the scheduler lease; it must not start more work."""


@dataclass(frozen=True, slots=True)
class LeaseState:
    """A lease row as stored."""

    name: str
    holder: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime


def make_holder_id() -> str:
    """``host:pid:random``: unique per process, readable in ``digest status``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def try_acquire(
    session: Session, *, name: str, holder: str, now: datetime, ttl: timedelta
) -> LeaseState | None:
    """Take the lease if it is free or expired, renew it if ``holder`` has it; else None."""
    table = SchedulerLease.__table__  # type: ignore[attr-defined]  # SQLModel sets it
    statement = (
        dialect_insert(session)(table)
        .values(name=name, holder=holder, acquired_at=now, heartbeat_at=now, expires_at=now + ttl)
        .on_conflict_do_update(
            index_elements=["name"],
            set_={
                "holder": holder,
                "heartbeat_at": now,
                "expires_at": now + ttl,
                # a renewal keeps the original acquisition time, a takeover starts a new one
                "acquired_at": case((table.c.holder == holder, table.c.acquired_at), else_=now),
            },
            where=or_(table.c.expires_at < now, table.c.holder == holder),
        )
        .returning(table.c.holder, table.c.acquired_at, table.c.expires_at)
    )
    row = session.execute(statement).first()
    if row is None:
        return None
    return LeaseState(name, row.holder, row.acquired_at, now, row.expires_at)


def release(session: Session, *, name: str, holder: str, now: datetime) -> bool:
    """Give the lease up now (a clean shutdown) so a standby need not wait for the TTL."""
    result = session.execute(
        update(SchedulerLease)
        .where(col(SchedulerLease.name) == name, col(SchedulerLease.holder) == holder)
        .values(expires_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def read_lease(session: Session, name: str = LEASE_NAME) -> LeaseState | None:
    """The stored lease row, whoever holds it."""
    row = session.get(SchedulerLease, name)
    if row is None:
        return None
    return LeaseState(row.name, row.holder, row.acquired_at, row.heartbeat_at, row.expires_at)


class Lease:
    """This process's side of the lease: acquire/renew, check, release. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        *,
        ttl: timedelta,
        holder: str | None = None,
        name: str = LEASE_NAME,
    ) -> None:
        self.engine = engine
        self.ttl = ttl
        self.name = name
        self.holder = holder or make_holder_id()
        self._valid_until: datetime | None = None
        self._lock = threading.Lock()

    def acquire(self, now: datetime) -> bool:
        """Take or renew the lease (one atomic statement); True while this process holds it.

        A database error keeps what we knew: the in-memory expiry still stops our jobs in
        time, and a standby can only take over after that same expiry.
        """
        try:
            with db.transaction(self.engine) as session:
                state = try_acquire(
                    session, name=self.name, holder=self.holder, now=now, ttl=self.ttl
                )
        except OperationalError as exc:
            log.warning("lease: cannot reach the database: %s", str(exc.orig or exc).strip())
            return self.held(now)
        with self._lock:
            self._valid_until = state.expires_at if state is not None else None
        return state is not None

    def held(self, now: datetime) -> bool:
        """True if our lease is valid at ``now`` with the safety margin to spare."""
        with self._lock:
            return self._valid_until is not None and now + SAFETY_MARGIN < self._valid_until

    def ensure(self, now: datetime) -> None:
        """Raise LeaseLostError unless this process holds the lease at ``now``.

        When the remembered validity ran out but we still believed we led (heartbeats held
        up, e.g. behind a long SQLite write), renew right here: the atomic statement either
        confirms that nobody else took over, or tells us someone did.
        """
        if self.held(now):
            return
        with self._lock:
            believed = self._valid_until is not None
        if not (believed and self.acquire(now) and self.held(now)):
            with self._lock:
                self._valid_until = None
            raise LeaseLostError(
                f"scheduler lease {self.name!r} is no longer held by {self.holder}"
            )

    def release(self, now: datetime) -> None:
        """Give the lease up (if we have it) and forget it."""
        with self._lock:
            had = self._valid_until is not None
            self._valid_until = None
        if not had:
            return
        try:
            with db.transaction(self.engine) as session:
                release(session, name=self.name, holder=self.holder, now=now)
        except OperationalError as exc:  # it expires on its own within the TTL
            log.warning("lease: release failed: %s", str(exc.orig or exc).strip())
