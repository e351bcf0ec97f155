"""The ``digest`` command: a thin shell over the library. Each command's help ends with an
example; expected failures print one line and exit 1 (2 when the command could not start:
see :mod:`digest.cli.common`).

Command modules import only Typer and the package's light modules at import time; each
command imports what it needs when it runs, so ``digest --version`` and ``--help`` stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from digest import __version__
from digest.cli import commands, feedback, feeds, serve, setup, sources, subscribers
from digest.cli.common import set_overrides
from digest.cli.help import App

app = App(
    name="digest",
    help="paper-digest: personal digests of new research papers, by email and feed.",
)
app.add_typer(subscribers.app, name="subscribers")
setup.register(app)  # init, config, db upgrade
app.add_typer(feeds.app, name="feeds")
commands.register(app)
serve.register(app)  # serve, scheduler, status
sources.register(app)  # sources list|add|remove|test, fetch
feedback.register(app)  # feedback


def _version(value: bool) -> None:
    if value:
        typer.echo(f"paper-digest {__version__}")
        raise typer.Exit


@app.callback()
def root(
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Overrides DIGEST_DATA_DIR.")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", metavar="URL", help="Overrides DIGEST_DATABASE_URL."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """paper-digest: personal digests of new research papers, by email and feed.

    Exit codes: 0 done; 1 the command failed (one line on stderr says why); 2 it could not
    start (a wrong command line, settings that do not load, no store to read).

    Example: digest init && digest import listing.json && digest run
    """
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["database_url"] = database_url
    set_overrides(overrides)


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())
