"""``digest feeds export DIR``: static files, only what changed, crash-safe, one at a time."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import Cli  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
from feed_support import (  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
    deliver,
    delivered_history,
    diffusion_paper,
    import_papers,
)
from web_fixtures import (  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
    PAPERS,
    RUN_AT,
    SettingsFactory,
    make_app,
    seed,
    web_client,
)

from digest.config.settings import Settings
from digest.render.feed_export import LOCK, MANIFEST, export_feeds
from digest.store import db
from digest.subscribers.library import (
    PreferenceInput,
    change_preferences,
    remove_subscriber,
    set_status,
)

FORMATS = ("atom", "rss", "json")


def files(directory: Path) -> dict[str, int]:
    """Visible files and their modification times (ns)."""
    return {p.name: p.stat().st_mtime_ns for p in directory.iterdir() if not p.name.startswith(".")}


def names(*feeds: str) -> set[str]:
    return {f"{feed}.{fmt}" for feed in feeds for fmt in FORMATS}


def edit(settings: Settings, email: str, **values: object) -> None:
    with db.transaction(settings) as session:
        change_preferences(
            session, email, PreferenceInput.from_values(values), now=RUN_AT + timedelta(hours=1)
        )


def test_export_writes_only_what_changed(backend: str, make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    bob = seed(settings, email="bob@example.org", keywords=("weather",))
    out = settings.data_dir / "public-feeds"
    first = export_feeds(settings, out)
    assert (first.feeds, first.written, first.unchanged, first.deleted) == (3, 9, 0, 0)
    assert set(files(out)) == names(ada.token, bob.token, "all")
    with web_client(make_app(settings)) as client:  # the same bytes the app serves
        for name in files(out):
            assert (out / name).read_bytes() == client.get(f"/feeds/{name}").content, name
    written = files(out)
    time.sleep(0.01)  # a rewrite would show in the modification times

    again = export_feeds(settings, out)
    assert (again.written, again.unchanged) == (0, 9)
    assert files(out) == written

    edit(settings, bob.email, hour=11, max_items=5)  # not shown in any feed
    assert export_feeds(settings, out).written == 0

    import_papers(settings, diffusion_paper(1), day=1)
    deliver(settings, ada.email, day=1)  # ada's feed, and the public one (a new paper)
    report = export_feeds(settings, out)
    assert (report.written, report.unchanged) == (6, 3)
    now = files(out)
    changed = {name for name in now if now[name] != written[name]}
    assert changed == names(ada.token, "all")
    assert b"Diffusion schedules, part 1" in (out / f"{ada.token}.atom").read_bytes()

    edit(settings, bob.email, keywords=["weather", "graphs"])  # bob's subtitle
    assert export_feeds(settings, out).written == 3
    assert b"weather, graphs" in (out / f"{bob.token}.rss").read_bytes()

    import_papers(settings, replace(PAPERS[2], upvotes=7), day=2)  # in bob's feed and all
    report = export_feeds(settings, out)
    assert report.written == 6
    assert b"7 upvotes" in (out / f"{bob.token}.json").read_bytes()

    everything = export_feeds(settings, out, everything=True)
    assert (everything.written, everything.unchanged) == (9, 0)


def test_export_deletes_feeds_no_longer_served(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    bob = seed(settings, email="bob@example.org", keywords=("weather",))
    carol = seed(settings, email="carol@example.org", deliver=False)
    out = settings.data_dir / "feeds-out"
    export_feeds(settings, out)
    (out / "index.html").write_text("the host's own file")
    assert set(files(out)) == names(ada.token, bob.token, carol.token, "all") | {"index.html"}

    with db.transaction(settings) as session:
        set_status(session, ada.email, "unsubscribed", now=RUN_AT)  # the app says 410
        set_status(session, carol.email, "paused", now=RUN_AT)  # still served
        remove_subscriber(session, bob.email)
    report = export_feeds(settings, out)
    assert (report.deleted, report.written) == (6, 0)
    assert set(files(out)) == names(carol.token, "all") | {"index.html"}
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["feeds"]) == {carol.token, "all"}

    with db.transaction(settings) as session:
        set_status(session, carol.email, "pending", now=RUN_AT)  # the app says 404
    report = export_feeds(settings.model_copy(update={"public_feed": False}), out)
    assert report.deleted == 6
    assert set(files(out)) == {"index.html"}  # never ours: left alone


def test_missing_or_cut_files_are_rewritten(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    out = settings.data_dir / "feeds-out"
    export_feeds(settings, out)
    atom = (out / f"{ada.token}.atom").read_bytes()
    (out / f"{ada.token}.atom").unlink()
    (out / "all.json").write_bytes(b"{")
    report = export_feeds(settings, out)
    assert report.written == 6  # the two feeds touched, all three files each
    assert (out / f"{ada.token}.atom").read_bytes() == atom
    json.loads((out / "all.json").read_bytes())


def parses(path: Path) -> bool:
    try:
        if path.suffix == ".json":
            json.loads(path.read_bytes())
        else:
            ET.fromstring(path.read_bytes())
    except (ValueError, ET.ParseError):
        return False
    return True


EXPORT = """
import sys
from pathlib import Path
from digest.config.settings import load_settings
from digest.render.feed_export import export_feeds
export_feeds(load_settings(), Path(sys.argv[1]), checkpoint_every=0.0)
"""


@pytest.mark.timeout(180)
def test_an_export_killed_midway_is_finished_by_the_next(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    subscribers = 150
    delivered_history(settings, subscribers=subscribers, digests=2, items=20)
    out = tmp_path / "feeds"
    env = {
        **os.environ,
        "DIGEST_DATA_DIR": str(settings.data_dir),
        "DIGEST_BASE_URL": settings.base_url,
    }
    process = subprocess.Popen([sys.executable, "-c", EXPORT, str(out)], env=env)
    manifest = out / MANIFEST
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            recorded = json.loads(manifest.read_text())["feeds"] if manifest.exists() else {}
            if len(recorded) >= 10:
                break
            time.sleep(0.005)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the export ended before it was killed"
    recorded = json.loads(manifest.read_text())["feeds"]
    assert 10 <= len(recorded) < subscribers  # killed midway
    visible = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert all(parses(p) for p in visible)  # no half-written file under a real name

    report = export_feeds(settings, out)
    assert report.written == 3 * (subscribers + 1 - len(recorded))  # the rest, no more
    assert not list(out.glob(".*.partial"))
    fresh = tmp_path / "fresh"
    export_feeds(settings, fresh)
    assert files(out).keys() == files(fresh).keys()
    for name in files(fresh):
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name


def test_cli_export(
    cli: Cli, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = seed(settings)
    out = tmp_path / "site" / "feeds"
    report = cli.json("feeds", "export", str(out))
    assert report == {
        "directory": str(out.resolve()),
        "feeds": 2,
        "written": 6,
        "unchanged": 0,
        "deleted": 0,
    }
    assert (out / f"{ada.token}.atom").is_file()
    text = cli("feeds", "export", str(out), "--all").stdout
    assert text.startswith("feeds 2: 6 files written, 0 unchanged, 0 deleted")

    with (out / LOCK).open("a") as held:  # another export at work
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = cli("feeds", "export", str(out), code=1)
    assert busy.output.strip().splitlines() == [
        f"error: another `digest feeds export` is writing to {out}"
    ]
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    failed = cli("feeds", "export", str(a_file), code=1)
    assert len(failed.output.strip().splitlines()) == 1
    assert failed.output.startswith(f"error: cannot write feeds to {a_file}")


def test_a_foreign_or_broken_manifest_only_costs_a_rewrite(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings()
    ada = seed(settings)
    out = tmp_path / "feeds"
    out.mkdir()
    outside = tmp_path / "precious.atom"
    outside.write_text("not ours")
    (out / MANIFEST).write_text(
        json.dumps({"feeds": {"../precious": {"atom": ["x", 8]}, ada.token: "junk"}})
    )
    report = export_feeds(settings, out)
    assert (report.written, report.deleted) == (6, 0)  # everything written, nothing deleted
    assert outside.read_text() == "not ours"
    assert set(json.loads((out / MANIFEST).read_text())["feeds"]) == {ada.token, "all"}
    (out / MANIFEST).write_text("{not json")
    assert export_feeds(settings, out).written == 6
