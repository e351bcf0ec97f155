"""``digest feeds …``: the feeds as static files.

The web app serves every feed from the store (``digest serve``); ``digest feeds export``
is for hosting them as static files instead (one call into
:mod:`digest.render.feed_export`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from digest.cli.common import console, get_settings, handle_errors, print_json
from digest.cli.help import App

app = App(help="Feeds as static files.")


@app.command("export")
@handle_errors
def export(
    directory: Annotated[
        Path, typer.Argument(help="Directory to write to; serve it at <base URL>/feeds/.")
    ],
    everything: Annotated[
        bool, typer.Option("--all", help="Rewrite every feed, changed or not.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Write the feeds that changed since the last export to DIRECTORY.

    Each active or paused subscriber's <token>.atom, .rss and .json, and all.atom, .rss and
    .json when DIGEST_PUBLIC_FEED is on. Files of subscribers who unsubscribed or were
    removed are deleted. Safe to run from cron: files are replaced atomically, an
    interrupted export is finished by the next one, and two exports to one directory never
    run at once.

    Example: digest feeds export /var/www/digest/feeds
    """
    from digest.render.feed_export import export_feeds  # noqa: PLC0415 - keep --help fast

    report = export_feeds(get_settings(), directory, everything=everything)
    if json_out:
        print_json(report.as_dict())
        return
    console.print(
        f"feeds {report.feeds}: {report.written} files written, {report.unchanged} unchanged,"
        f" {report.deleted} deleted in {report.directory}",
        highlight=False,
        soft_wrap=True,
    )
