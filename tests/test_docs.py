"""Every command is documented with an example, and the README knows every setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from digest.cli import app
from digest.config.settings import describe_settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _commands() -> list[list[str]]:
    root = get_command(app)
    paths: list[list[str]] = []

    def walk(command: object, prefix: list[str]) -> None:
        sub = getattr(command, "commands", None)
        if sub:
            for name, child in sub.items():
                walk(child, [*prefix, name])
        else:
            paths.append(prefix)

    walk(root, [])
    return paths


COMMANDS = _commands()


def test_command_set() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {
        "demo",
        "import",
        "rank",
        "run",
        "preview",
        "feed",
        "status",
        "db upgrade",
        "subscribers add",
        "subscribers list",
        "subscribers show",
        "subscribers edit",
        "subscribers pause",
        "subscribers resume",
        "subscribers remove",
        "subscribers import",
        "subscribers export",
        "subscribers sync",
    } <= names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_help_has_example_and_readme_mentions_it(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    assert f"`digest {' '.join(path)}" in README


@pytest.mark.parametrize("env", [row[1] for row in describe_settings()])
def test_readme_documents_setting(env: str) -> None:
    assert f"`{env}`" in README


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("paper-digest ")


def test_no_traceback_for_expected_errors() -> None:
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    result = CliRunner().invoke(app, ["subscribers", "show", "nobody@example.org"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "no subscriber" in result.output
    assert isinstance(result.exception, SystemExit | typer.Exit)
