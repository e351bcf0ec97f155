"""Read commands never create or migrate a store, and can read one they cannot write.

Issue 11, item 4: ``DIGEST_DATA_DIR=./typo digest subscribers list`` created a new empty
store, any reachable PostgreSQL database got the schema on a first read command, and a
read-only store could not be read at all ("unable to open database file").
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from typer.testing import CliRunner

from digest.cli import app
from digest.config.resources import sample_dir
from digest.config.settings import Settings
from digest.errors import StoreMissingError
from digest.runner import run_digests
from digest.sources.imports import import_files
from digest.store import db

IMPORTED = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
RUN_AT = IMPORTED + timedelta(hours=3)
READS = [
    ["subscribers", "list", "--json"],
    ["subscribers", "show", "ada@example.org", "--json"],
    ["subscribers", "export"],
    ["status", "--json", "--now", RUN_AT.isoformat()],
    ["preview", "ada@example.org", "--json", "--now", RUN_AT.isoformat()],
    ["feed", "ada@example.org", "--format", "json"],
    ["sources", "list", "--json"],
]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert isinstance(result.exception, SystemExit | None), result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DIGEST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DIGEST_BASE_URL", settings.base_url)
    if settings.database_url:
        monkeypatch.setenv("DIGEST_DATABASE_URL", settings.database_url)
    return settings


def _tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_reads_refuse_a_store_that_does_not_exist_and_create_nothing(
    backend: str, env: Settings
) -> None:
    for args in [*READS, ["sources", "test", "hf"]]:  # hf: not in digest.toml either
        code, _out, err = invoke(*args)
        assert code == 2, (args, err)
        assert err.startswith(f"error: no store at {db.store_location(env)}"), err
        assert '"digest init" or any write command creates one' in err
    if backend == "sqlite":
        assert not env.data_dir.exists()
    else:
        assert _tables(env.resolved_database_url) == []  # no schema on a read
    code, out, _err = invoke("init")
    assert code == 0 and out.startswith(f"created a store at {db.store_location(env)}")
    assert invoke("subscribers", "list", "--json")[:2] == (0, "[]\n")
    assert "is ready" in invoke("init")[1]


def test_a_store_at_an_older_revision_is_not_migrated_by_a_read(
    env: Settings,
) -> None:
    engine = db.create_db_engine(env.resolved_database_url)
    command.upgrade(db._alembic_config(engine), "0004")
    engine.dispose()
    code, _out, err = invoke("subscribers", "list")
    assert code == 2
    assert "is at revision 0004" in err and "digest db upgrade" in err
    engine = db.create_db_engine(env.resolved_database_url)
    assert db.current_revisions(engine) == ("0004",)
    engine.dispose()
    assert invoke("db", "upgrade")[0] == 0
    assert invoke("subscribers", "list")[0] == 0


def test_a_write_command_creates_the_store(env: Settings) -> None:
    assert not env.data_dir.exists()
    assert invoke("subscribers", "add", "ada@example.org", "-k", "robots")[0] == 0
    assert (env.data_dir / "digest.sqlite3").is_file()


def test_missing_store_is_an_error_type(settings: Settings) -> None:
    with pytest.raises(StoreMissingError):
        db.read_engine(settings)


@contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """``directory`` unwritable for this process: a read-only bind mount as root (root
    ignores permission bits), else permission bits."""
    db.dispose_engines()
    if os.geteuid() == 0:
        mount = subprocess.run(
            ["mount", "--bind", "-o", "ro", str(directory), str(directory)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mount.returncode != 0:
            pytest.skip(f"cannot make a read-only mount here: {mount.stderr.strip()}")
        try:
            yield
        finally:
            db.dispose_engines()
            subprocess.run(["umount", str(directory)], check=True)
        return
    modes = {path: path.stat().st_mode for path in [directory, *directory.iterdir()]}
    for path, mode in modes.items():
        path.chmod(stat.S_IMODE(mode) & ~0o222)
    try:
        yield
    finally:
        db.dispose_engines()
        for path, mode in modes.items():
            path.chmod(stat.S_IMODE(mode))


@pytest.fixture
def filled(env: Settings) -> Settings:
    """A SQLite store with a subscriber, papers and a sent digest (outbox elsewhere)."""
    outbox = env.data_dir.parent / "outbox"
    settings = env.model_copy(update={"outbox_dir": outbox})
    assert invoke(
        "subscribers", "add", "ada@example.org", "-k", "reinforcement learning",
        "--frequency", "daily", "--hour", "7",
    )[0] == 0  # fmt: skip
    import_files(settings, sorted(sample_dir().glob("*.txt.gz")), now=IMPORTED)
    assert run_digests(settings, now=RUN_AT).sent == 1
    db.dispose_engines()  # the last connection closes: WAL checkpointed, -wal/-shm removed
    return settings


def _reads_work(directory: Path) -> dict[str, str]:
    outputs = {}
    for args in READS:
        code, out, err = invoke(*args)
        assert code == 0, (args, err)
        outputs[" ".join(args[:2])] = out
    return outputs


def test_a_read_only_store_is_readable(filled: Settings) -> None:
    directory = filled.data_dir
    assert not list(directory.glob("digest.sqlite3-*"))  # no WAL index to open read-only
    with read_only(directory):
        with pytest.raises(OSError):  # really read-only
            (directory / "probe").write_text("x")
        outputs = _reads_work(directory)
        # a write command is refused with one line, not a traceback
        code, _out, err = invoke("subscribers", "add", "bob@example.org", "-k", "robots")
        assert code == 1 and err.count("\n") == 1 and err.startswith("error:")
    listed = json.loads(outputs["subscribers list"])
    assert [row["email"] for row in listed] == ["ada@example.org"]
    feed = json.loads(outputs["feed ada@example.org"])
    assert feed["items"], "the sent digest's papers are in the feed"


def test_a_read_only_store_with_a_live_write_ahead_log(filled: Settings) -> None:
    """A writer that has not checkpointed yet: its WAL must be read, not skipped."""
    path = filled.data_dir / "digest.sqlite3"
    writer = sqlite3.connect(path)
    try:
        writer.execute("PRAGMA wal_autocheckpoint=0")
        writer.execute("UPDATE subscriber SET name = 'Ada Lovelace'")
        writer.commit()
        assert (filled.data_dir / "digest.sqlite3-wal").stat().st_size > 0
        with read_only(filled.data_dir):
            code, out, err = invoke("subscribers", "show", "ada@example.org", "--json")
            db.dispose_engines()
            # SQLite keeps a reader's file open while another connection in this process
            # holds the same file: close the writer before the mount goes away.
            writer.close()
            assert code == 0, err
            assert json.loads(out)["name"] == "Ada Lovelace"
    finally:
        writer.close()


def test_the_read_engine_is_checked_once_and_kept(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    with db.transaction(settings):
        pass
    engine = db.read_engine(settings)
    assert engine is db.read_engine(settings)
