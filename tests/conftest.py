"""Shared fixtures: isolated settings on SQLite and, when reachable, PostgreSQL.

PostgreSQL tests use ``DIGEST_TEST_POSTGRES_URL`` (default: the local server's ``test``
database); each test gets its own schema, dropped afterwards. When the server is not
reachable they skip with the reason, unless ``DIGEST_REQUIRE_POSTGRES=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from digest.config.settings import Settings, load_settings
from digest.store import db
from tests.store_template import StoreTemplate

POSTGRES_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("DIGEST_REQUIRE_POSTGRES") == "1"
SEEDS = Path(__file__).parent / "data" / "listings" / "seeds"
_KEEP_ENV = {"DIGEST_REQUIRE_POSTGRES", "DIGEST_TEST_POSTGRES_URL"}


@pytest.fixture(scope="session", autouse=True)
def _store_template() -> Iterator[StoreTemplate]:
    """New stores from one recorded migration (tests/store_template.py explains);
    ``DIGEST_TEST_REAL_MIGRATIONS=1`` migrates every store for real."""
    template = StoreTemplate(db.upgrade, POSTGRES_URL)
    template.enabled = os.environ.get("DIGEST_TEST_REAL_MIGRATIONS") != "1"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(db, "upgrade", template.upgrade)
        yield template
    _REPLAYS.update(template.replays)


_REPLAYS: dict[str, int] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _REPLAYS:
        counts = ", ".join(f"{n} {dialect}" for dialect, n in sorted(_REPLAYS.items()))
        terminalreporter.write_line(f"stores made from the recorded migration: {counts}")


@pytest.fixture(autouse=True)
def _real_migrations(
    request: pytest.FixtureRequest, _store_template: StoreTemplate
) -> Iterator[None]:
    """Tests marked ``real_migrations`` run every Alembic migration on their stores."""
    if request.node.get_closest_marker("real_migrations") is None:
        yield
        return
    enabled, _store_template.enabled = _store_template.enabled, False
    try:
        yield
    finally:
        _store_template.enabled = enabled


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No developer environment or digest.toml leaks into a test."""
    for name in list(os.environ):
        if name.startswith("DIGEST_") and name not in _KEEP_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    yield
    db.dispose_engines()


def _postgres_reason() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {str(exc).splitlines()[0]}"
    return None


_PG_REASON: list[str | None] = []


def postgres_reason() -> str | None:
    if not _PG_REASON:
        _PG_REASON.append(_postgres_reason())
    return _PG_REASON[0]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema of this test."""
    reason = postgres_reason()
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(f"DIGEST_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    schema = f"t_{secrets.token_hex(6)}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        db.dispose_engines()
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Settings]:
    """Settings factory on the test's backend (SQLite unless the test uses ``backend``)."""
    url: str | None = None
    if "backend" in request.fixturenames and request.getfixturevalue("backend") == "postgres":
        url = request.getfixturevalue("postgres_url")

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "base_url": "https://digest.example.org",
            "mail_from": "Paper digest <digest@digest.example.org>",
            "smtp_retry_wait": 0.0,
        }
        if url:
            values["database_url"] = url
        values.update(overrides)
        return load_settings(**values)

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


class Cli:
    """Runs ``digest`` through Typer's runner with the test's settings in the environment."""

    def __init__(self) -> None:
        from typer.testing import CliRunner  # noqa: PLC0415 - only CLI tests need it

        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0) -> Any:
        from digest.cli import app  # noqa: PLC0415 - only CLI tests need it

        result = self.runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)


@pytest.fixture
def cli(backend: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI on the test's backend (SQLite and PostgreSQL), with its store created
    (``digest init``): read commands refuse a store that does not exist."""
    monkeypatch.setenv("DIGEST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DIGEST_BASE_URL", settings.base_url)
    if settings.database_url:
        monkeypatch.setenv("DIGEST_DATABASE_URL", settings.database_url)
    runner = Cli()
    runner("init")
    return runner
