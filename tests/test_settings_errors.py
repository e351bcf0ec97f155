"""Settings that cannot be loaded say where and how to fix it; ``digest config`` tells all.

Issue 11, items 1, 2 and 10: a malformed digest.toml and a malformed ``DIGEST_SOURCES`` were
tracebacks, an unknown key in digest.toml was ignored, ``config --json`` printed every value
as a string and ``config`` did not say which file it read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from digest.cli import app
from digest.config.settings import load_settings
from digest.errors import SettingsError

DIGEST = Path(sys.executable).with_name("digest")  # the console script of this environment


def _digest(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``digest`` command in a process of its own."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    environment.update(env or {})
    return subprocess.run(
        [str(DIGEST), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_malformed_toml_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text('base_url = "http://example.org\n')
    done = _digest("status", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: digest.toml: not valid TOML: Illegal character '\\n' (at line 1, column 31); "
        "fix that line (a missing quote or bracket?) or point DIGEST_CONFIG at another file"
    ]
    assert done.stdout == ""


def test_malformed_sources_variable_is_one_line_in_a_real_process(tmp_path: Path) -> None:
    done = _digest("sources", "list", cwd=tmp_path, env={"DIGEST_SOURCES": '[{"name":'})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: DIGEST_SOURCES: not valid JSON (Expecting value at character 9); it must be "
        'JSON, e.g. \'[{"name": "hf", "kind": "hf_daily"}]\'; fix or unset DIGEST_SOURCES'
    ]


SOURCES_KIND = '[{"name": "x", "kind": "rss"}]'
CASES = [
    ('site_nam = "x"\n', {}, "digest.toml: unknown setting 'site_nam' (did you mean 'site_name'?)"),
    (
        "smtp_port = 0\n",
        {},
        "digest.toml: smtp_port: Input should be greater than or equal to 1 (got 0); "
        "fix it in digest.toml",
    ),
    ("", {"DIGEST_SMTP_PORT": "abc"}, "DIGEST_SMTP_PORT: Input should be a valid integer"),
    (
        "",
        {"DIGEST_DEFAULT_TIMEZONE": "Mars/Base"},
        "DIGEST_DEFAULT_TIMEZONE: unknown time zone 'Mars/Base'",
    ),
    (
        '[[sources]]\nname = "x"\nkind = "arxiv"\n',
        {},
        "digest.toml: sources[0]: an arxiv source needs categories",
    ),
    (
        '[[sources]]\nname = "x"\nkind = "file"\nurl = "a.json"\nformt = "feed"\n',
        {},
        "digest.toml: sources[0].formt: unknown key",
    ),
    ("", {"DIGEST_SOURCES": SOURCES_KIND}, "DIGEST_SOURCES (sources[0].kind): Input should be"),
    (
        "",
        {"DIGEST_CONFIG": "/nowhere/digest.toml"},
        "DIGEST_CONFIG points to /nowhere/digest.toml, which is not a file",
    ),
]


@pytest.mark.parametrize(("toml", "env", "expected"), CASES)
def test_settings_errors_name_the_place(
    toml: str,
    env: dict[str, str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if toml:
        (tmp_path / "digest.toml").write_text(toml)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert expected in str(info.value) and "\n" not in str(info.value)
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {expected}")


def test_secret_values_never_appear_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_ENVIRONMENT", "production")
    monkeypatch.setenv("DIGEST_SECRET_KEY", "")
    with pytest.raises(SettingsError, match="DIGEST_SECRET_KEY must be set") as info:
        load_settings(base_url="https://x.org")
    assert "got" not in str(info.value)


def test_file_source_paths_are_taken_from_the_settings_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "digest.toml").write_text(
        '[[sources]]\nname = "drop"\nkind = "file"\nurl = "listings/today.json"\n'
    )
    monkeypatch.setenv("DIGEST_CONFIG", str(conf / "digest.toml"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_settings().sources[0].url == str(conf / "listings" / "today.json")


def test_config_says_which_file_and_where_values_come_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "digest.toml").write_text(
        'site_name = "Lab digest"\nmax_items = 12\n[[sources]]\nname = "hf"\nkind = "hf_daily"\n'
    )
    monkeypatch.setenv("DIGEST_SEND_EMPTY", "true")
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "hunter2")
    runner = CliRunner()
    text = runner.invoke(app, ["config"], terminal_width=300)
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[0] == f"settings file: {tmp_path / 'digest.toml'}"
    assert "hunter2" not in text.stdout

    data = json.loads(runner.invoke(app, ["--data-dir", "here", "config", "--json"]).stdout)
    assert data["file"] == str(tmp_path / "digest.toml")
    rows = {row["name"]: row for row in data["settings"]}
    assert (rows["max_items"]["value"], rows["max_items"]["from"]) == (12, "file")
    assert (rows["send_empty"]["value"], rows["send_empty"]["from"]) == (True, "environment")
    assert (rows["smtp_port"]["value"], rows["smtp_port"]["from"]) == (25, "default")
    assert (rows["data_dir"]["value"], rows["data_dir"]["from"]) == ("here", "option")
    assert rows["min_score"]["value"] is None
    assert rows["smtp_retry_wait"]["value"] == 1.0
    assert rows["sources"]["value"][0]["name"] == "hf"
    assert rows["smtp_password"]["value"] == "***"
    assert rows["secret_key"]["value"] == "(placeholder)"
    assert rows["hf_token"]["value"] is None
    assert rows["site_name"]["env"] == "DIGEST_SITE_NAME"

    (tmp_path / "digest.toml").unlink()
    none = runner.invoke(app, ["config", "--json"])
    assert json.loads(none.stdout)["file"] is None
    plain = runner.invoke(app, ["config"], terminal_width=300)
    assert plain.stdout.splitlines()[0].startswith("settings file: none")
