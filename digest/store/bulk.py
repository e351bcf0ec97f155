"""Bulk writes through the driver's own fast paths, for the run's hundreds of thousands of
rows (ORM objects and per-row SQL compilation cost more than the database work).

- :func:`insert_returning`: ``INSERT … ON CONFLICT DO NOTHING RETURNING``: on SQLite
  multi-row ``VALUES``, one statement per few hundred rows, built once per size; on
  PostgreSQL one statement whatever the count, ``SELECT * FROM unnest(…)`` of one array
  parameter per column.
- :func:`insert_ignoring`: rows whose returned ids are not needed, streamed from an iterable
  (never a list of millions of tuples): SQLite ``executemany``, PostgreSQL ``COPY`` (on a
  conflict, into a temporary table then one ``INSERT … SELECT … ON CONFLICT DO NOTHING``).

Values go to the driver as they are, except date-times, which get the column type's bind
processing (UTC, and SQLite's text format); JSON columns take JSON text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import DateTime, Table
from sqlmodel import Session

_ROWS_PER_STATEMENT = 500


def _processors(session: Session, table: Table, columns: Sequence[str]) -> list[Any]:
    dialect = session.get_bind().dialect
    processors: list[Callable[[Any], Any] | None] = []
    for name in columns:
        column = table.c[name]
        impl = getattr(column.type, "impl", column.type)
        processors.append(
            column.type.bind_processor(dialect) if isinstance(impl, DateTime) else None
        )
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
        # One statement for all the rows: a column of values per array parameter, planned
        # once. Multi-row VALUES lists of 500 rows (4,500 parameters) took ~70 ms each.
        arrays = ", ".join(f"%s::{table.c[name].type.compile(dialect)}[]" for name in columns)
        unnest = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - our own names
            f"SELECT * FROM unnest({arrays}){tail}"
        )
        with raw.cursor() as cursor:
            cursor.execute(unnest, [list(values) for values in zip(*prepared, strict=True)])
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
    if session.get_bind().dialect.name == "postgresql":
        _copy_ignoring(raw, table.name, names, prepared, on_conflict)
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


def _copy_ignoring(
    raw: Any, table: str, names: str, rows: Iterable[tuple[Any, ...]], on_conflict: str
) -> None:
    """PostgreSQL: ``COPY`` straight into the table (a savepoint catches a conflict, rare:
    two runs recording at once); on a conflict, ``COPY`` into a temporary copy and insert
    from it skipping the conflicting rows."""
    from psycopg import errors  # noqa: PLC0415 - the PostgreSQL driver, only on this path

    def copy_into(target: str) -> None:
        with raw.cursor() as cursor, cursor.copy(f"COPY {target} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    try:
        with raw.transaction():  # a SAVEPOINT inside the session's transaction
            copy_into(table)
        return
    except errors.UniqueViolation:
        pass
    load = f"{table}_load"
    shape = f"SELECT {names} FROM {table} WITH NO DATA"  # noqa: S608 - our own names
    with raw.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {load} ON COMMIT DELETE ROWS AS {shape}")
    copy_into(load)
    with raw.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {load} {on_conflict}"  # noqa: S608 - our own names
        )
        cursor.execute(f"TRUNCATE {load}")
