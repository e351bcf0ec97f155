"""A new test store in milliseconds: the statements of one real migration, replayed.

Most tests start on an empty store, and running every Alembic migration on it costs about
0.3 s (loading ten migration scripts and SQLite's batch table rebuilds), more than many tests
take themselves. The first empty store of each dialect in a session is migrated for real with
every statement its DBAPI cursor receives recorded; the recording is then replayed into a
scratch store and the two schemas compared (tables, columns, indexes, constraints, triggers,
the Alembic revision): if they differ the session fails, never a test quietly running on a
wrong schema. Every later empty store gets the same statements on one connection.

Only an empty database (no table at all, no Alembic revision) upgraded to the head takes this
path: a store at an older revision, or one with foreign tables, runs the real migrations, and so
does a test marked ``real_migrations`` (those about the migrations themselves). Processes the
tests start (CLI runs, render workers) always migrate for real.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from digest.store import db

Statement = tuple[str, Any, bool]  # SQL, parameters, executemany
Upgrade = Callable[[Engine], tuple[tuple[str, ...], tuple[str, ...]]]


def _is_empty(engine: Engine) -> bool:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = "SELECT count(*) FROM sqlite_master"
        else:
            query = (
                "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                "c.relnamespace WHERE n.nspname = current_schema()) + (SELECT count(*) FROM "
                "pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = "
                "current_schema())"
            )
        return connection.exec_driver_sql(query).scalar_one() == 0


def schema_of(engine: Engine) -> list[tuple[Any, ...]]:
    """Everything a migration creates, comparable across two databases or schemas."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
            ).all()
        else:
            schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
            queries = [
                "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, "
                "column_default, character_maximum_length FROM information_schema.columns "
                "WHERE table_schema = current_schema() ORDER BY 1, 3",
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() ORDER BY 1, 2",
                "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(c.oid) "
                "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                "WHERE n.nspname = current_schema() ORDER BY 1, 2",
                "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(t.oid) "
                "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
                "AND NOT t.tgisinternal ORDER BY 1, 2",
                "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n "
                "ON n.oid = p.pronamespace WHERE n.nspname = current_schema() ORDER BY 1",
                "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() ORDER BY 1",
            ]
            rows = [
                tuple(str(v).replace(f"{schema}.", "<schema>.") for v in row)
                for query in queries
                for row in connection.exec_driver_sql(query).all()
            ]
        revisions = connection.exec_driver_sql(
            "SELECT version_num FROM alembic_version ORDER BY 1"
        ).all()
    return [tuple(row) for row in rows] + [("alembic_version", *r) for r in revisions]


class StoreTemplate:
    """Replaces ``db.upgrade`` for the session (see the module docstring)."""

    def __init__(self, real: Upgrade, postgres_url: str) -> None:
        self.real = real
        self.postgres_url = postgres_url
        self.recorded: dict[str, list[Statement]] = {}
        self.enabled = True
        self.replays: dict[str, int] = {}  # stores made by replay, per dialect

    def upgrade(self, engine: Engine) -> tuple[tuple[str, ...], tuple[str, ...]]:
        dialect = engine.dialect.name
        if (
            not self.enabled
            or dialect not in ("sqlite", "postgresql")
            or db.current_revisions(engine)
            or not _is_empty(engine)
        ):
            return self.real(engine)
        if dialect not in self.recorded:
            statements = self._record(engine)
            self._verify(engine, statements)
            self.recorded[dialect] = statements
            return (), db.current_revisions(engine)
        replay(engine, self.recorded[dialect])
        self.replays[dialect] = self.replays.get(dialect, 0) + 1
        return (), db.current_revisions(engine)

    def _record(self, engine: Engine) -> list[Statement]:
        statements: list[Statement] = []

        def listen(
            _conn: Any,
            _cursor: Any,
            statement: str,
            parameters: Any,
            _context: Any,
            executemany: bool,
        ) -> None:
            statements.append((statement, parameters, executemany))

        event.listen(engine, "before_cursor_execute", listen)
        try:
            self.real(engine)
        finally:
            event.remove(engine, "before_cursor_execute", listen)
        return statements

    def _verify(self, migrated: Engine, statements: list[Statement]) -> None:
        with self._scratch(migrated.dialect.name) as scratch:
            replay(scratch, statements)
            expected, replayed = schema_of(migrated), schema_of(scratch)
        if expected != replayed:
            missing = [r for r in expected if r not in replayed]
            extra = [r for r in replayed if r not in expected]
            raise AssertionError(
                f"replayed migrations differ from the real ones: missing {missing}, extra {extra}"
            )

    @contextmanager
    def _scratch(self, dialect: str) -> Iterator[Engine]:
        if dialect == "sqlite":
            with tempfile.TemporaryDirectory(prefix="digest-template-") as directory:
                engine = db.create_db_engine(f"sqlite:///{Path(directory) / 'scratch.db'}")
                try:
                    yield engine
                finally:
                    engine.dispose()
            return
        schema = f"t_{secrets.token_hex(6)}"
        admin = sa.create_engine(self.postgres_url)
        with admin.begin() as connection:
            connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
        engine = db.create_db_engine(f"{self.postgres_url}?options=-csearch_path%3D{schema}")
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.begin() as connection:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


def replay(engine: Engine, statements: list[Statement]) -> None:
    """Run ``statements`` on one DBAPI connection of ``engine`` and commit."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters, many in statements:
            if many:
                cursor.executemany(statement, parameters)
            else:
                cursor.execute(statement, parameters)
        cursor.close()
        raw.commit()
    finally:
        raw.close()
