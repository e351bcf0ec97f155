"""``digest demo``: the whole pipeline on the bundled sample, in a fresh directory.

Imports the sample listings shipped in the package (real Hugging Face listing pages),
syncs the demo subscribers, delivers every subscriber's digest to an outbox of ``.eml``
files, writes their feeds and an HTML copy of each email, and prints a summary.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from digest.config.resources import sample_dir, subscribers_dir
from digest.config.settings import load_settings
from digest.errors import ConfigError
from digest.render.assemble import render_preview
from digest.render.feed_export import export_feeds
from digest.runner import run_digests
from digest.sources.imports import import_files
from digest.store import db
from digest.subscribers import admin

MARKER = ".paper-digest-demo"


def _fresh(directory: Path) -> None:
    # Refuse to wipe a directory the demo did not create: it may hold real data.
    if directory.exists() and any(directory.iterdir()) and not (directory / MARKER).exists():
        raise ConfigError(f"{directory} exists and is not a demo directory; choose another --dir")
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).write_text("created by `digest demo`; deleted by the next demo run\n")


def run_demo(directory: Path, *, console: Console) -> dict[str, Any]:
    """Run the demo in ``directory`` (recreated) and print a summary; returns it as data."""
    started = time.perf_counter()
    directory = directory.resolve()
    _fresh(directory)
    db.dispose_engines()
    settings = load_settings(
        data_dir=directory,
        database_url=f"sqlite:///{directory / 'digest.sqlite3'}",
        delivery="outbox",
        outbox_dir=directory / "outbox",
    )
    listings = sorted(sample_dir().glob("*.txt.gz"))
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("importing sample listings", total=len(listings))
        imported = import_files(
            settings,
            listings,
            now=datetime.now(UTC),
            source="sample",
            on_file=lambda _r: progress.advance(task),
        )
    admin.sync(settings, subscribers_dir(), prune=False, now=datetime.now(UTC))
    emails = [row["email"] for row in admin.listing(settings, status="active")]
    now = datetime.now(UTC)
    rows = []
    html_dir = directory / "html"
    html_dir.mkdir()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("ranking and delivering", total=len(emails))
        for email in emails:
            # Keep a browser-friendly copy of what the email shows (the .eml is in outbox/).
            view, rendered = render_preview(settings, email, now=now)
            if view.items:
                (html_dir / f"{email}.html").write_text(rendered.html, "utf-8")
            report = run_digests(settings, now=now, subscriber_email=email)
            rows.extend(report.digests)
            progress.advance(task)
    export_feeds(settings, directory / "feeds")  # static copies of what `digest serve` serves
    elapsed = time.perf_counter() - started

    table = Table(title="paper-digest demo", show_lines=True, expand=True)
    table.add_column("subscriber", no_wrap=True)
    table.add_column("items", justify="right")
    table.add_column("top pick", ratio=3)
    table.add_column("why: interests matched", ratio=2)
    for row in rows:
        table.add_row(
            row.email.split("@", 1)[0],
            str(row.items) if row.status != "empty" else "0",
            row.top_title or "nothing relevant this week: no email",
            ", ".join(row.top_matched) or row.error or "",
        )
    console.print(
        f"imported {imported.new} new papers ({imported.seen} repeats) "
        f"from {len(listings)} sample listings"
    )
    console.print(table)
    outbox = settings.resolved_outbox_dir
    console.print(f"emails (.eml):   {outbox}")
    console.print(f"emails (HTML):   {html_dir}")
    console.print(f"feeds:           {directory / 'feeds'}")
    console.print(f"store:           {directory / 'digest.sqlite3'}")
    console.print(f"done in {elapsed:.1f} s")
    db.dispose_engines()
    return {
        "new": imported.new,
        "seen": imported.seen,
        "digests": [
            {
                "email": r.email,
                "status": r.status,
                "items": r.items,
                "top": r.top_title,
                "why": r.top_reason,
            }
            for r in rows
        ],
        "outbox": str(outbox),
        "feeds": str(directory / "feeds"),
        "seconds": round(elapsed, 2),
    }
