"""The one owner of the database: engine, sessions, migrations.

Every other module takes a ``session`` and never commits; entry points (a CLI command, a web
request, a scheduled job) open a transaction here and commit at their boundary.

SQLite (the embedded default) runs in WAL mode with foreign keys on; PostgreSQL is used
through psycopg 3. Alembic migrations are applied by the first write (:func:`get_engine`),
``digest init`` and ``digest db upgrade``.

Read-only commands use :func:`read_engine` / :func:`reading`: they never create a store or
its schema (a typo in ``DIGEST_DATA_DIR`` or a PostgreSQL database that has no store is a
:class:`~digest.errors.StoreMissingError`), and a SQLite store they cannot write (a
read-only file, directory or file system) is opened read-only: ``mode=ro`` when its WAL
index exists or can be created, else ``immutable=1`` (nothing can be pending in a WAL
without an index, so nothing is missed).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import ColumnElement, any_, bindparam, event, inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Mapped
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from digest.config.settings import Settings
from digest.errors import ConfigError, StoreMissingError
from digest.store.checkpoint import HELD

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


def one_of(
    session: Session, column: ColumnElement[Any] | Mapped[Any], values: Sequence[Any]
) -> Iterator[ColumnElement[bool]]:
    """Conditions "``column`` is one of ``values``", as few as the backend allows: ask one
    query per condition and take the union (none at all for no values).

    On PostgreSQL one ``column = ANY(:values)`` with the values as one array parameter: a
    statement planned once whatever the count (an ``IN`` list of 10,000 bind parameters
    took ~0.1 s to send and plan, three times the array's time; a weekly run for 100,000
    subscribers asks about fifty such lists). Elsewhere ``IN`` lists of :data:`IN_CHUNK`.
    """
    if not values:
        return
    if session.get_bind().dialect.name == "postgresql":
        expression = inspect(column).expression if isinstance(column, Mapped) else column
        array = bindparam(None, list(values), type_=postgresql.ARRAY(expression.type))
        yield expression == any_(array)
        return
    for chunk in chunks(values):
        yield column.in_(chunk)


_engines: dict[str, Engine] = {}
_migrated: set[str] = set()  # engines (by cache key) brought to the head revision here
_lock = threading.Lock()
CREATES = '"digest init" or any write command creates one'


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers (web, feeds) work while a run writes; busy_timeout waits out a
    # concurrent writer instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # A connection whose commit held the WAL checkpoint (store/checkpoint.py) gets its
    # automatic checkpoint back before anyone else uses it.
    held = record.info.pop(HELD, None)
    if held is not None and dbapi_connection is not None:
        dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={int(held)}")


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
        event.listen(engine, "checkin", _sqlite_checkin)
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


def _open_error(url: str, exc: OperationalError) -> ConfigError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return ConfigError(f"cannot open database {_safe(url)}: {reason}")


def get_engine(settings: Settings, *, migrate: bool = True) -> Engine:
    """The process-wide engine for the configured database, created and migrated on first
    use: what write commands use."""
    url = settings.resolved_database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = create_db_engine(url)
        if migrate and url not in _migrated:
            try:
                upgrade(engine)
            except OperationalError as exc:
                raise _open_error(url, exc) from None
            _migrated.add(url)
        return engine


def store_location(settings: Settings) -> str:
    """The store as a person would name it: the SQLite file, else the URL (no password)."""
    parsed = make_url(settings.resolved_database_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return str(Path(parsed.database).absolute())
    return _safe(settings.resolved_database_url)


def _sqlite_read_only(path: Path) -> Engine:
    """An engine that never writes the file: ``mode=ro``, or ``immutable=1`` when SQLite
    could not create the WAL index beside the file (see the module docstring)."""
    shm = Path(f"{path}-shm")
    flag = "mode=ro" if shm.exists() or os.access(path.parent, os.W_OK) else "immutable=1"
    uri = f"file:{quote(str(path.absolute()))}?{flag}"

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)

    engine = create_engine("sqlite://", creator=connect)
    event.listen(engine, "connect", _sqlite_read_pragmas)
    return engine


def _sqlite_read_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def read_engine(settings: Settings) -> Engine:
    """The engine of an existing store at the head revision, for commands that only read.

    Never creates a file, a directory or a table; StoreMissingError says what to run.
    """
    url = settings.resolved_database_url
    parsed = make_url(url)
    where = store_location(settings)
    key = url
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database))
        if not path.is_file() or path.stat().st_size == 0:
            raise StoreMissingError(f"no store at {where}; {CREATES}")
        if not _writable(path):
            key = f"{url}#read-only"
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = create_db_engine(url) if key == url else _sqlite_read_only(path)
            _engines[key] = engine
    if key in _migrated:
        return engine
    try:
        current = current_revisions(engine)
    except OperationalError as exc:
        raise _open_error(url, exc) from None
    if not current:
        raise StoreMissingError(f"no store at {where} (no paper-digest tables there); {CREATES}")
    if current != head_revisions():
        raise StoreMissingError(
            f"the store at {where} is at revision {', '.join(current)} and this version of "
            f"paper-digest needs {', '.join(head_revisions())}: run `digest db upgrade` "
            "(or any write command)"
        )
    with _lock:
        _migrated.add(key)  # checked: at the head, nothing to do
    return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, forks, shutdown)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()


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


@contextmanager
def reading(settings: Settings) -> Iterator[Session]:
    """A session on :func:`read_engine` for commands that only read; never commits."""
    with Session(read_engine(settings), expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.rollback()


def _safe(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)
