"""Bulk writes through the driver's own fast paths, for the run's hundreds of thousands of
rows (ORM objects and per-row SQL compilation cost more than the database work).

- :func:`insert_returning`: ``INSERT … ON CONFLICT DO NOTHING RETURNING``: on SQLite
  multi-row ``VALUES``, one statement per few hundred rows, built once per size; on
  PostgreSQL a binary ``COPY`` into a temporary table, then one ``INSERT … SELECT``.
- :func:`insert_ignoring`: rows whose returned ids are not needed, streamed from an iterable
  (never a list of millions of tuples): SQLite ``executemany``, PostgreSQL binary ``COPY``
  (on a conflict, into a temporary table then one ``INSERT … SELECT … ON CONFLICT DO
  NOTHING``).

Values go to the driver as they are, except date-times, which get the column type's bind
processing (UTC, and SQLite's text format; once per distinct value); JSON columns take JSON
text. PostgreSQL's ``COPY`` is binary: each value is sent in its column's own binary form
(psycopg's C dumpers; no text to escape, nothing for the server to parse), so a column
type without an entry in :data:`_COPY_TYPES` is refused rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import DateTime, Table
from sqlalchemy.engine import Dialect
from sqlmodel import Session

_ROWS_PER_STATEMENT = 500
# PostgreSQL column types (as SQLAlchemy compiles them, without a length) -> the type whose
# binary form psycopg sends in a binary COPY. JSON's binary form is its text.
_COPY_TYPES = {
    "INTEGER": "int4",
    "BIGINT": "int8",
    "SMALLINT": "int2",
    "FLOAT": "float8",
    "DOUBLE PRECISION": "float8",
    "VARCHAR": "text",
    "TEXT": "text",
    "JSON": "text",
    "BOOLEAN": "bool",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}


def _copy_types(table: Table, columns: Sequence[str], dialect: Dialect) -> list[str]:
    types = []
    for name in columns:
        compiled = re.sub(r"\(.*\)", "", table.c[name].type.compile(dialect)).strip()
        if compiled not in _COPY_TYPES:
            raise TypeError(f"no binary COPY type for {table.name}.{name} ({compiled})")
        types.append(_COPY_TYPES[compiled])
    return types


def _once_per_value(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` applied once per distinct value: a run's 100,000 digest rows share a few
    times. (Equal date-times in different zones are one instant: one UTC value.)"""
    done: dict[Any, Any] = {}

    def processed(value: Any) -> Any:
        found = done.get(value, done)
        if found is done:
            found = done[value] = fn(value)
        return found

    return processed


def _processors(session: Session, table: Table, columns: Sequence[str]) -> list[Any]:
    dialect = session.get_bind().dialect
    processors: list[Callable[[Any], Any] | None] = []
    for name in columns:
        column = table.c[name]
        impl = getattr(column.type, "impl", column.type)
        fn = column.type.bind_processor(dialect) if isinstance(impl, DateTime) else None
        processors.append(None if fn is None else _once_per_value(fn))
    return processors


def _prepared(rows: Sequence[tuple[Any, ...]], processors: list[Any]) -> list[tuple[Any, ...]]:
    if not any(processors):
        return list(rows)
    return [
        tuple(value if fn is None else fn(value) for value, fn in zip(row, processors, strict=True))
        for row in rows
    ]


class _Processed:
    """``rows`` with the bind processors applied as they are read (iterable again)."""

    def __init__(self, rows: Iterable[tuple[Any, ...]], processors: list[Any]) -> None:
        self._rows, self._processors = rows, processors

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        processors = self._processors
        if not any(processors):
            return iter(self._rows)
        return (
            tuple(v if fn is None else fn(v) for v, fn in zip(row, processors, strict=True))
            for row in self._rows
        )


def _placeholder(session: Session) -> str:
    return "%s" if session.get_bind().dialect.name == "postgresql" else "?"


def insert_returning(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    conflict: Sequence[str],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (tuples in ``columns`` order), skipping conflicts on ``conflict``;
    the ``returning`` columns of the rows actually inserted."""
    if not rows:
        return []
    raw = session.connection().connection.driver_connection
    assert raw is not None
    tail = f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {', '.join(returning)}"
    prepared = _prepared(rows, _processors(session, table, columns))
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        # The rows by binary COPY into a temporary table, then one statement: an
        # ``unnest`` of one array parameter per column spent most of its time in psycopg's
        # Python array dumper (100,000 digest rows: 2.7 s of client CPU, COPY 0.3 s).
        names = ", ".join(columns)
        types = _copy_types(table, columns, dialect)
        with _loaded(raw, table.name, names, prepared, types) as load, raw.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {load}{tail}"  # noqa: S608 - our own names
            )
            return [tuple(row) for row in cursor.fetchall()]
    mark = _placeholder(session)
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "  # noqa: S608 - our own table and column names
    out: list[tuple[Any, ...]] = []
    statements: dict[int, str] = {}
    cursor = raw.cursor()
    try:
        for start in range(0, len(prepared), _ROWS_PER_STATEMENT):
            chunk = prepared[start : start + _ROWS_PER_STATEMENT]
            sql = statements.get(len(chunk))
            if sql is None:
                sql = statements[len(chunk)] = head + ", ".join([one] * len(chunk)) + tail
            cursor.execute(sql, [value for row in chunk for value in row])
            out.extend(tuple(row) for row in cursor.fetchall())
    finally:
        cursor.close()
    return out


def insert_ignoring(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Iterable[tuple[Any, ...]],
    *,
    conflict: Sequence[str],
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order), skipping conflicts on ``conflict``.

    ``rows`` is read as it is written; PostgreSQL may read it twice (a conflict), so pass a
    sequence or an iterable that starts over on each ``iter``, not a one-shot iterator.
    """
    raw = session.connection().connection.driver_connection
    assert raw is not None
    names = ", ".join(columns)
    on_conflict = f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    prepared = _Processed(rows, _processors(session, table, columns))
    dialect = session.get_bind().dialect
    if dialect.name == "postgresql":
        types = _copy_types(table, columns, dialect)
        _copy_ignoring(raw, table.name, names, prepared, types, on_conflict)
        return
    cursor = raw.cursor()
    try:
        marks = ", ".join(["?"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {table.name} ({names}) VALUES ({marks}) {on_conflict}",  # noqa: S608 - our own table names
            prepared,
        )
    finally:
        cursor.close()


def _copy(
    raw: Any, target: str, names: str, rows: Iterable[tuple[Any, ...]], types: list[str]
) -> None:
    """PostgreSQL: ``rows`` into ``target`` by one binary ``COPY``."""
    with (
        raw.cursor() as cursor,
        cursor.copy(f"COPY {target} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


@contextmanager
def _loaded(
    raw: Any, table: str, names: str, rows: Iterable[tuple[Any, ...]], types: list[str]
) -> Iterator[str]:
    """PostgreSQL: a temporary table of ``table``'s ``names`` columns holding ``rows``
    (dropped afterwards: another call may load other columns)."""
    load = f"{table}_load"
    shape = f"SELECT {names} FROM {table} WITH NO DATA"  # noqa: S608 - our own names
    with raw.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE {load} ON COMMIT DROP AS {shape}")
    _copy(raw, load, names, rows, types)
    yield load
    with raw.cursor() as cursor:
        cursor.execute(f"DROP TABLE {load}")


def _copy_ignoring(
    raw: Any,
    table: str,
    names: str,
    rows: Iterable[tuple[Any, ...]],
    types: list[str],
    on_conflict: str,
) -> None:
    """PostgreSQL: ``COPY`` straight into the table (a savepoint catches a conflict, rare:
    two runs recording at once); on a conflict, ``COPY`` into a temporary copy and insert
    from it skipping the conflicting rows."""
    from psycopg import errors  # noqa: PLC0415 - the PostgreSQL driver, only on this path

    try:
        with raw.transaction():  # a SAVEPOINT inside the session's transaction
            _copy(raw, table, names, rows, types)
        return
    except errors.UniqueViolation:
        pass
    with _loaded(raw, table, names, rows, types) as load, raw.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {load} {on_conflict}"  # noqa: S608 - our own names
        )
