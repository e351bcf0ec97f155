"""What a user trips over on the command line (issue 11, items 7, 8, 9, 11, 12 and 15).

- 7: contradictory options are refused; ``subscribers edit`` has every option of ``add``
  and ``--json``, removes an entry whatever its weight, and says when nothing changed.
- 8: a relative ``--url`` of a ``file`` source is stored absolute.
- 9: ``serve`` warns when ``DIGEST_BASE_URL`` points at another port of this machine.
- 11: the preview of an empty week tells the truth about ``DIGEST_SEND_EMPTY``; ``fetch``
  with no source says how to add one.
- 12: help text shows plain types, literal brackets, no backticks, the weekday's values.
- 15: imports show progress per paper, retries are announced, ``--version`` is fast.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from conftest import Cli
from typer.testing import CliRunner

from digest.cli import app
from digest.cli.serve import base_url_mismatch
from digest.config.calendar import WEEKDAYS
from digest.config.resources import sample_dir
from digest.config.settings import Settings
from digest.sources.imports import import_files
from digest.testing.http import HttpTestServer, Reply
from digest.testing.imitations import HF_PATH, hf_item

DIGEST = Path(sys.executable).with_name("digest")
IMPORTED = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
SAMPLE = sorted(sample_dir().glob("*.txt.gz"))


# 7 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--html", "out.html", "--json"], "error: --json and --html cannot be used together"),
        (["--text", "--json"], "error: --json and --text cannot be used together"),
    ],
)
def test_preview_refuses_contradictory_options(
    cli: Cli, extra: list[str], message: str, tmp_path: Path
) -> None:
    cli("subscribers", "add", "ada@example.org", "-k", "robots")
    result = cli("preview", "ada@example.org", *extra, code=2)
    assert result.stderr == message + "\n" and result.stdout == ""
    assert not (tmp_path / "out.html").exists()


def test_serve_refuses_host_or_port_without_the_web_app(cli: Cli) -> None:
    assert "--no-web and --port" in cli("serve", "--no-web", "--port", "9000", code=2).stderr
    assert "--no-web and --host" in cli("serve", "--no-web", "--host", "::", code=2).stderr


def test_edit_removes_by_phrase_and_says_what_changed(cli: Cli) -> None:
    cli("subscribers", "add", "ada@example.org", "-k", "RLHF^2", "-k", "world models")
    result = cli("subscribers", "edit", "ada@example.org", "--remove-keyword", "rlhf")
    assert (
        result.stdout == "updated ada@example.org: keywords RLHF^2, world models → world models\n"
    )
    cli("subscribers", "edit", "ada@example.org", "--add-keyword", "World Models^3")
    assert cli.json("subscribers", "show", "ada@example.org")["keywords"] == ["World Models^3"]
    missing = cli("subscribers", "edit", "ada@example.org", "--remove-keyword", "GAN", code=1)
    assert missing.stderr == "error: keyword 'GAN' is not in the profile ('World Models^3')\n"

    same = cli("subscribers", "edit", "ada@example.org", "--hour", "8")
    assert same.stdout == "nothing changed: ada@example.org already has these values\n"
    nothing = cli("subscribers", "edit", "ada@example.org", code=2)
    assert nothing.stderr.startswith("error: nothing to change: give at least one option")
    both = cli("subscribers", "edit", "ada@example.org", "-k", "a", "--add-keyword", "b", code=2)
    assert "--keyword replaces the whole list" in both.stderr


def test_edit_has_every_option_of_add_and_json(cli: Cli) -> None:
    cli("subscribers", "add", "ada@example.org", "-k", "robots")
    info = cli.json(
        "subscribers", "edit", "ada@example.org", "--require", "learning", "--author",
        "Ada Lovelace", "--category", "cs.RO", "--weekday", "friday",
    )  # fmt: skip
    assert (info["required"], info["authors"], info["categories"], info["weekday"]) == (
        ["learning"],
        ["Ada Lovelace"],
        ["cs.RO"],
        "friday",
    )


# 8 -----------------------------------------------------------------------------------------


def test_a_relative_file_source_is_stored_absolute(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    listing = drop / "listing.txt.gz"
    listing.write_bytes(SAMPLE[0].read_bytes())
    monkeypatch.chdir(drop)
    added = cli("sources", "add", "drop", "--kind", "file", "--url", "listing.txt.gz")
    assert added.stdout == f"added file source drop: {listing}\n"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (source,) = cli.json("sources", "list")
    assert source["url"] == str(listing)
    fetched = cli.json("fetch")
    assert fetched["sources"]["drop"]["status"] == "ok" and fetched["new"] > 0
    warned = cli("sources", "add", "later", "--kind", "file", "--url", "not-yet.json")
    assert f"warning: {elsewhere / 'not-yet.json'} does not exist (yet)" in warned.stderr


# 9 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "host", "port", "warns"),
    [
        ("http://localhost:8000", "127.0.0.1", 8765, True),
        ("http://127.0.0.1:8000", "0.0.0.0", 8765, True),
        ("http://localhost:8765", "127.0.0.1", 8765, False),
        ("https://digest.example.org", "127.0.0.1", 8765, False),  # behind a proxy
        ("http://localhost", "127.0.0.1", 8000, False),  # a local proxy on port 80
        ("http://digest.internal:8000", "127.0.0.1", 8765, False),  # another host
    ],
)
def test_base_url_mismatch(base_url: str, host: str, port: int, warns: bool) -> None:
    assert (base_url_mismatch(base_url, host, port) is not None) is warns


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_warns_about_a_base_url_on_another_port(settings: Settings, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_DATA_DIR=str(settings.data_dir),
        DIGEST_SCHEDULER_FETCH_CRON="off",
        DIGEST_LOG_JSON="1",
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(DIGEST), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # up: it answers its health check
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    (line,) = [line for line in log.read_text().splitlines() if line.startswith("warning:")]
    assert line == (
        "warning: DIGEST_BASE_URL is http://localhost:8000 but the web app listens on "
        f"127.0.0.1:{port}: every link in mails and feeds (confirmations, unsubscribes) would "
        f"be dead; set DIGEST_BASE_URL=http://localhost:{port} (or serve on port 8000)"
    )


def test_serve_stops_on_a_signal_that_arrives_while_it_starts(
    settings: Settings, tmp_path: Path
) -> None:
    """SIGTERM before uvicorn has its own handlers was swallowed: the process ran on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(DIGEST_DATA_DIR=str(settings.data_dir), DIGEST_SCHEDULER_FETCH_CRON="off")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(DIGEST), "serve", "--host", "127.0.0.1", "--port", str(_free_port())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "warning:" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)  # the warning comes just before the handlers and the app
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# 11 ----------------------------------------------------------------------------------------


def test_preview_of_an_empty_week_tells_the_truth(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("subscribers", "add", "rosalind@example.org", "-k", "cryo-EM", "--frequency", "daily")
    cli("import", *map(str, SAMPLE))
    html = tmp_path / "note.html"
    quiet = cli("preview", "rosalind@example.org", "--html", str(html))
    assert "no email would be sent (DIGEST_SEND_EMPTY is false)" in quiet.stdout
    assert "quiet periods" not in quiet.stdout and not html.exists()
    assert cli.json("preview", "rosalind@example.org")["would_send"] is False

    monkeypatch.setenv("DIGEST_SEND_EMPTY", "true")
    note = cli("preview", "rosalind@example.org", "--text")
    assert "Nothing new matched your interests" in note.stdout
    assert cli.json("preview", "rosalind@example.org")["would_send"] is True


def test_fetch_without_sources_says_how_to_add_one(cli: Cli) -> None:
    result = cli("fetch")
    assert result.stderr == (
        "warning: no sources are defined: add one with digest sources add hf-daily --kind "
        "hf_daily (or a [[sources]] table in digest.toml)\n"
    )
    cli("sources", "add", "hf", "--kind", "hf_daily", "--disabled")
    disabled = cli("fetch")
    assert "every source is disabled (hf): name one with --source" in disabled.stderr
    assert "add one with" in cli("sources", "list").stdout or cli.json("sources", "list")


# 12 ----------------------------------------------------------------------------------------


def _commands() -> list[list[str]]:
    from test_cli_newcomer import COMMANDS  # noqa: PLC0415 - the same walk

    return [command.split() for command in COMMANDS]


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_help_reads_well(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = result.output
    for raw in ("<bool>", "<str>", "<int>", "<float>", "<path>", "list[", "`", "{"):
        assert raw not in text, f"{' '.join(path)} --help shows {raw!r}"
    example = next(line for line in text.splitlines() if "Example:" in line)
    assert "digest " in example


def test_help_keeps_brackets_and_lists_weekdays() -> None:
    runner = CliRunner()
    sources = runner.invoke(app, ["sources", "add", "--help"], terminal_width=200).output
    assert "digest.toml's [[sources]] are edited in the file" in sources
    for command in ("add", "edit"):
        text = runner.invoke(app, ["subscribers", command, "--help"], terminal_width=250).output
        weekday = text.split("--weekday", 1)[1].split("--hour", 1)[0]
        assert all(day in weekday for day in WEEKDAYS), weekday
        assert re.search(r"--hour\s+0-23", text)
        assert re.search(r"--frequency\s+daily\|weekly\|off", text)


# 15 ----------------------------------------------------------------------------------------


def test_import_reports_progress_per_paper(settings: Settings, tmp_path: Path) -> None:
    listing = tmp_path / "big.json"
    items = [hf_item(f"2410.{n:05d}", f"Paper number {n}") for n in range(1200)]
    listing.write_text(json.dumps(items))
    heard: list[tuple[str, int, int]] = []
    import_files(settings, [listing], now=IMPORTED, on_progress=lambda *event: heard.append(event))
    assert heard[0] == (str(listing), 0, 0)  # reading
    storing = [(done, total) for _path, done, total in heard[1:]]
    assert {total for _done, total in storing} == {2400}  # two steps per paper
    done = [d for d, _total in storing]
    assert done == sorted(done) and done[-1] == 2400 and len(done) >= 6


def test_retries_are_announced(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGEST_HTTP_RETRIES", "2")
    monkeypatch.setenv("DIGEST_HTTP_RETRY_WAIT", "0")
    with HttpTestServer() as server:
        server.route(HF_PATH, Reply(503))
        cli("sources", "add", "hf", "--kind", "hf_daily", "--url", server.url(HF_PATH))
        result = cli("sources", "test", "hf", code=1)
    lines = result.stderr.splitlines()
    retries = [line for line in lines if "retry" in line]
    assert len(retries) == 2, result.stderr
    assert "GET http://127.0.0.1" in retries[0]
    assert "failed (HTTP 503 Service Unavailable); retry 1 of 2 in 0.0 s" in retries[0]
    assert "retry 2 of 2" in retries[1]
    assert lines[-1].startswith("error: ") and "after 3 attempts" in lines[-1]

    closed = _free_port()  # nothing listens there: connection refused
    cli("sources", "add", "gone", "--kind", "feed", "--url", f"http://127.0.0.1:{closed}/f")
    fetched = cli("fetch", "--source", "gone", code=1)
    assert "ConnectError" in fetched.stderr and "retry 2 of 2" in fetched.stderr


def test_the_version_and_help_import_nothing_heavy() -> None:
    """``digest --version`` must not pay for the database, settings or ranking libraries
    (1 s before; the time is measured in bench/cli_startup.py)."""
    probe = (
        "import sys, digest.cli; heavy = ('sqlalchemy', 'alembic', 'pydantic_settings', "
        "'numpy', 'scipy', 'numba', 'fastapi', 'httpx', 'email_validator', 'jinja2'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
    version = subprocess.run(
        [str(DIGEST), "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert version.stdout.startswith("paper-digest ")


def test_a_digest_toml_source_can_be_tried_before_any_store(tmp_path: Path) -> None:
    with HttpTestServer() as server:
        server.route(HF_PATH, Reply(200, body=b"[]", headers={"Content-Type": "application/json"}))
        (tmp_path / "digest.toml").write_text(
            f'[[sources]]\nname = "hf"\nkind = "hf_daily"\nurl = "{server.url(HF_PATH)}"\n'
        )
        result = CliRunner().invoke(app, ["sources", "test", "hf"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"hf (hf_daily) {server.url(HF_PATH)}: ok")
    assert not (tmp_path / "xdg").exists()
