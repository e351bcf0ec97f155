"""The one owner of the database: engine, sessions, migrations.

Every other module takes a ``session`` and never commits; entry points (a CLI command, a web
request, a scheduled job) open a transaction here and commit at their boundary.

SQLite (the embedded default) runs in WAL mode with foreign keys on; PostgreSQL is used
through psycopg 3. Alembic migrations are applied on first use and by ``digest db upgrade``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from digest.config.settings import Settings
from digest.errors import ConfigError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Values per ``IN (...)`` list: every value is a bind parameter, and a statement may have at
# most 32,766 of them on SQLite (the default since 3.32) and 65,535 with psycopg. A run for
# 100,000 subscribers therefore asks in chunks.
IN_CHUNK = 10_000
T = TypeVar("T")


def chunks(values: Sequence[T], size: int | None = None) -> Iterator[Sequence[T]]:
    """``values`` in consecutive slices of at most ``size`` (default :data:`IN_CHUNK`)."""
    step = size or IN_CHUNK
    for start in range(0, len(values), step):
        yield values[start : start + step]


_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers (web, feeds) work while a run writes; busy_timeout waits out a
    # concurrent writer instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_db_engine(url: str) -> Engine:
    """A new engine for ``url`` with the right options for its dialect."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"invalid database URL {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        try:
            return create_engine(url, pool_pre_ping=True)
        except ModuleNotFoundError:
            raise ConfigError(
                "PostgreSQL needs psycopg: pip install 'paper-digest[postgres]'"
            ) from None
    raise ConfigError(f"unsupported database {parsed.get_backend_name()!r} (SQLite or PostgreSQL)")


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def current_revisions(engine: Engine) -> tuple[str, ...]:
    """The revisions the database is at (several while independent branches exist)."""
    with engine.connect() as connection:
        return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


def head_revisions() -> tuple[str, ...]:
    return tuple(sorted(ScriptDirectory(str(MIGRATIONS)).get_heads()))


def upgrade(engine: Engine) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Apply pending migrations; return (revisions before, revisions after)."""
    before = current_revisions(engine)
    if before != head_revisions():
        command.upgrade(_alembic_config(engine), "heads")
    return before, current_revisions(engine)


def get_engine(settings: Settings, *, migrate: bool = True) -> Engine:
    """The process-wide engine for the configured database, migrated on first use."""
    url = settings.resolved_database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_db_engine(url)
            if migrate:
                try:
                    upgrade(engine)
                except OperationalError as exc:
                    engine.dispose()
                    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                    raise ConfigError(f"cannot open database {_safe(url)}: {reason}") from None
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, forks, shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def transaction(settings_or_engine: Settings | Engine) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises.

    Only entry points use this; the functions they call take the session and never commit.
    """
    engine = (
        settings_or_engine
        if isinstance(settings_or_engine, Engine)
        else get_engine(settings_or_engine)
    )
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _safe(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)
