"""A newcomer's walk: every command, fed what a newcomer gets wrong, answers in one line.

Every command of the Typer app (walked like ``tests/test_docs.py`` does) is run with (a) a
broken ``digest.toml``, (b) a broken ``DIGEST_SOURCES``, and, for the commands that only
read, (c) a store that does not exist. Each must print exactly one line on stderr, exit 1 or
2, raise nothing but its exit, and create nothing. A new command must be added to
:data:`ARGS` (the test fails otherwise), so it cannot escape the walk.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from digest.cli import app

EMAIL = "ada@example.org"
# Arguments that reach each command's body (valid as far as its options go).
ARGS: dict[str, list[str]] = {
    "init": [],
    "config": [],
    "import": ["listing.json"],
    "rank": ["listing.json", "-k", "robots"],
    "run": [],
    "preview": [EMAIL],
    "feed": [EMAIL],
    "feeds export": ["feeds-out"],
    "feedback": [EMAIL, "arxiv:2410.17243", "--up"],
    "demo": ["--dir", "demo-out"],
    "serve": [],
    "scheduler": [],
    "worker": ["--burst"],
    "status": [],
    "fetch": [],
    "subscribers add": [EMAIL, "-k", "robots"],
    "subscribers list": [],
    "subscribers show": [EMAIL],
    "subscribers edit": [EMAIL, "--hour", "7"],
    "subscribers pause": [EMAIL],
    "subscribers resume": [EMAIL],
    "subscribers remove": [EMAIL, "--yes"],
    "subscribers export": [],
    "subscribers import": ["subscribers.json"],
    "subscribers sync": ["profiles"],
    "db upgrade": [],
    "sources list": [],
    "sources add": ["hf", "--kind", "hf_daily"],
    "sources remove": ["hf"],
    "sources test": ["hf"],
}
# Commands that only read the store: they must refuse one that does not exist. (``sources
# test`` reads too, but tries a digest.toml source without a store; it is walked above.)
READ_COMMANDS = [
    "preview",
    "feed",
    "feeds export",
    "status",
    "subscribers list",
    "subscribers show",
    "subscribers export",
    "sources list",
]


def _walk() -> list[str]:
    names: list[str] = []

    def walk(command: object, prefix: list[str]) -> None:
        sub = getattr(command, "commands", None)
        if sub:
            for name, child in sub.items():
                walk(child, [*prefix, name])
        else:
            names.append(" ".join(prefix))

    walk(get_command(app), [])
    return names


COMMANDS = _walk()


def test_every_command_is_walked() -> None:
    assert sorted(COMMANDS) == sorted(ARGS)
    assert set(READ_COMMANDS) <= set(ARGS)


def _run(command: str) -> tuple[int, str, object]:
    result = CliRunner().invoke(app, [*command.split(), *ARGS[command]])
    return result.exit_code, result.stderr, result.exception


def _one_line(command: str, code: int, stderr: str, exception: object) -> str:
    assert isinstance(exception, SystemExit), f"{command}: raised {exception!r}"
    assert code in (1, 2), f"{command}: exit {code}: {stderr}"
    assert "Traceback" not in stderr, f"{command}: {stderr}"
    lines = stderr.splitlines()
    assert len(lines) == 1, f"{command}: {stderr!r}"
    assert lines[0].startswith("error: "), f"{command}: {stderr!r}"
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_broken_digest_toml(command: str, tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('base_url = "http://example.org\n')  # no end quote
    line = _one_line(command, *_run(command))
    assert "digest.toml" in line and "line 1" in line
    assert _run(command)[0] == 2
    assert not (tmp_path / "xdg").exists()  # no data directory, no store


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_key_in_digest_toml(command: str, tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('site_nam = "Lab digest"\n')
    line = _one_line(command, *_run(command))
    assert "site_nam" in line and "site_name" in line


@pytest.mark.parametrize("command", COMMANDS)
def test_broken_digest_sources(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGEST_SOURCES", '[{"name":')
    code, stderr, exception = _run(command)
    line = _one_line(command, code, stderr, exception)
    assert code == 2 and "DIGEST_SOURCES" in line and "JSON" in line
    assert not (tmp_path / "xdg").exists()


@pytest.mark.parametrize("command", READ_COMMANDS)
def test_missing_store(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_DATA_DIR", str(tmp_path / "typo"))
    code, stderr, exception = _run(command)
    line = _one_line(command, code, stderr, exception)
    assert code == 2
    assert f"no store at {tmp_path / 'typo' / 'digest.sqlite3'}" in line
    assert "digest init" in line
    assert not (tmp_path / "typo").exists()  # a read never creates the directory
