"""``digest sources …`` (define and try listing sources) and ``digest fetch`` (pull them)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer

from digest.cli.common import (
    console,
    get_settings,
    handle_errors,
    parse_now,
    print_error,
    print_json,
    print_warning,
    say,
)
from digest.cli.help import App
from digest.config.formats import FORMATS
from digest.errors import UsageError

KINDS = ("hf_daily", "arxiv", "feed", "file")
app = App(help="Define, list and try listing sources.")
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Name = Annotated[str, typer.Argument(help="The source's name.")]
Now = Annotated[
    str | None,
    typer.Option("--now", metavar="TIME", help="Pretend it is this ISO 8601 time (default: now)."),
]
NO_SOURCES = (
    "no sources are defined: add one with digest sources add hf-daily --kind hf_daily "
    "(or a [[sources]] table in digest.toml)"
)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


@app.command("list")
@handle_errors
def list_(json_out: Json = False) -> None:
    """List every source (digest.toml's and added ones) with where it stands.

    Example: digest sources list --json
    """
    from rich.table import Table  # noqa: PLC0415 - keep --help fast
    from rich.text import Text  # noqa: PLC0415 - keep --help fast

    from digest.sources.config import list_sources, source_states  # noqa: PLC0415 - keep --help fast
    from digest.store import db  # noqa: PLC0415 - keep --help fast

    settings = get_settings()
    with db.reading(settings) as session:
        entries = list_sources(session, settings)
        states = source_states(session)
    rows = []
    for entry in entries:
        spec, state = entry.spec, states.get(entry.spec.name)
        rows.append(
            {
                "name": spec.name,
                "kind": spec.kind,
                "url": spec.resolved_url,
                "origin": entry.origin,
                "enabled": spec.enabled,
                "options": spec.options(),
                "last_date": state.last_date.isoformat() if state and state.last_date else None,
                "last_success_at": state.last_success_at if state else None,
                "last_error_at": state.last_error_at if state else None,
                "last_error": state.last_error if state else None,
            }
        )
    if json_out:
        print_json(rows)
        return
    if not rows:
        say(NO_SOURCES)
        return
    table = Table("name", "kind", "url", "from", "last success", "last error")
    for entry in entries:
        spec, state = entry.spec, states.get(entry.spec.name)
        cells = (
            spec.name + ("" if spec.enabled else " (disabled)"),
            spec.kind,
            spec.resolved_url,
            "digest.toml" if entry.origin == "config" else "added",
            _when(state.last_success_at if state else None),
            (state.last_error or "") if state else "",
        )
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)


@app.command("add")
@handle_errors
def add(
    name: Name,
    kind: Annotated[
        str, typer.Option("--kind", metavar="|".join(KINDS), help="What kind of source.")
    ],
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="Endpoint, listing base, feed URL or file path (a relative path is stored "
            "absolute).",
        ),
    ] = None,
    categories: Annotated[
        str | None,
        typer.Option(
            "--categories", metavar="CATS", help="arxiv: comma-separated, e.g. cs.LG,cs.AI."
        ),
    ] = None,
    lookback_days: Annotated[
        int | None, typer.Option("--lookback-days", help="hf_daily: days pulled on the first run.")
    ] = None,
    cross: Annotated[
        bool, typer.Option("--cross", help="arxiv: announce cross-listed papers too.")
    ] = False,
    enrich: Annotated[
        bool, typer.Option("--enrich", help="arxiv: complete new papers from the query API.")
    ] = False,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", metavar="URL", help="arxiv: the query API endpoint."),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help=f"file: the listing format, {', '.join(FORMATS)} (default: detect).",
        ),
    ] = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Skip it in digest fetch unless named.")
    ] = False,
) -> None:
    """Add a source to the store (digest.toml's [[sources]] are edited in the file).

    Example: digest sources add arxiv-ml --kind arxiv --categories cs.LG,cs.AI --cross
    """
    from digest.config.sources import anchored, build_spec  # noqa: PLC0415 - keep --help fast
    from digest.sources.config import add_source  # noqa: PLC0415 - keep --help fast
    from digest.store import db  # noqa: PLC0415 - keep --help fast

    settings = get_settings()
    given = build_spec(
        name=name,
        kind=kind,
        url=url,
        categories=categories,
        lookback_days=lookback_days,
        cross=cross or None,
        enrich=enrich or None,
        api_url=api_url,
        format=fmt,
        enabled=False if disabled else None,
    )
    spec = anchored(given, Path.cwd())
    with db.transaction(settings) as session:
        add_source(session, settings, spec, now=datetime.now(UTC))
    say(f"added {spec.kind} source {spec.name}: {spec.resolved_url}")
    if spec.kind == "file" and not Path(spec.resolved_url).is_file():
        print_warning(
            f"{spec.resolved_url} does not exist (yet): fetching it will fail until it does"
        )


@app.command("remove")
@handle_errors
def remove(name: Name) -> None:
    """Remove an added source and its state (the papers it brought stay).

    Example: digest sources remove arxiv-ml
    """
    from digest.sources.config import remove_source  # noqa: PLC0415 - keep --help fast
    from digest.store import db  # noqa: PLC0415 - keep --help fast

    settings = get_settings()
    with db.transaction(settings) as session:
        remove_source(session, settings, name)
    say(f"removed source {name}")


@app.command("test")
@handle_errors
def test(name: Name, now: Now = None, json_out: Json = False) -> None:
    """Fetch one page of a source and show what it parsed; nothing is stored. Each retry
    (connection error, timeout, 429, 5xx) is logged with its reason and wait.

    Example: digest sources test hf-daily
    """
    from digest.sources.probe import probe_source  # noqa: PLC0415 - keep --help fast

    when = parse_now(now)
    report = probe_source(get_settings(), name, now=when)
    if json_out:
        print_json(report.as_dict())
        return
    say(f"{report.name} ({report.kind}) {report.url}: ok, {report.label}")
    for title in report.titles:
        say(f"  • {title}")


def _parse_since(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--since: not a date (YYYY-MM-DD): {value!r}") from None


@handle_errors
def fetch(
    source: Annotated[
        list[str] | None,
        typer.Option("--source", "-s", metavar="NAME", help="Fetch only this source."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="DATE", help="hf_daily: start at this date (YYYY-MM-DD)."),
    ] = None,
    now: Now = None,
    json_out: Json = False,
) -> None:
    """Pull every enabled source into the store; exit 1 if any source failed. Each retry
    (connection error, timeout, 429, 5xx) is logged with its reason and wait.

    Example: digest fetch --source hf-daily --since 2026-11-16 --json
    """
    from rich.table import Table  # noqa: PLC0415 - keep --help fast

    from digest.sources.fetcher import fetch_all  # noqa: PLC0415 - keep --help fast

    when, start = parse_now(now), _parse_since(since)
    settings = get_settings()
    report = fetch_all(settings, now=when, only=source or None, since=start)
    for failed in report.failed:
        print_error(f"{failed.name}: {failed.error}")
    if not report.sources:
        print_warning(
            NO_SOURCES
            if not report.disabled
            else f"every source is disabled "
            f"({', '.join(report.disabled)}): name one with --source, or enable it"
        )
    if json_out:
        print_json(report.as_dict())
    else:
        table = Table("source", "kind", "status", "new", "seen", "updated")
        for item in report.sources:
            status = "ok" if item.status == "ok" else "[red]error[/]"
            table.add_row(
                item.name, item.kind, status, str(item.new), str(item.seen), str(item.updated)
            )
        if report.sources:
            console.print(table)
        console.print(f"new {report.new}, seen {report.seen}, failed {len(report.failed)}")
    if report.failed:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    """Add ``digest sources …`` and ``digest fetch`` to the root command."""
    root.add_typer(app, name="sources")
    root.command("fetch")(fetch)
