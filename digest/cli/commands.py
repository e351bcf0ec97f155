"""Top-level commands: import, rank, run, preview, feed, demo, config, db."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from digest.cli.common import (
    console,
    err_console,
    get_settings,
    handle_errors,
    parse_now,
    print_json,
)
from digest.errors import DigestError
from digest.parsers import FORMATS
from digest.store import db

if TYPE_CHECKING:
    from digest.config.settings import Settings
    from digest.runner import RunReport

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
FormatOpt = Annotated[
    str,
    typer.Option("--format", "-f", help=f"Listing format: auto, {', '.join(FORMATS)}."),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Now = Annotated[
    str | None, typer.Option("--now", help="Pretend it is this ISO 8601 time (default: now).")
]


def _check_format(fmt: str) -> str:
    from digest.errors import ListingFormatError  # noqa: PLC0415 - imported when the command runs: --help stays fast

    if fmt != "auto" and fmt not in FORMATS:
        raise ListingFormatError(f"unknown format {fmt!r}: use auto, {', '.join(FORMATS)}")
    return fmt


@handle_errors
def import_(
    files: Annotated[list[Path], typer.Argument(help="Listing files (.gz is read transparently).")],
    fmt: FormatOpt = "auto",
    source: Annotated[str | None, typer.Option(help="Source name to record.")] = None,
    json_out: Json = False,
) -> None:
    """Import listing files; report how many papers are new and how many were seen before.

    Example: digest import daily_papers.json arxiv-cs.LG.rss --json
    """
    from digest.sources.imports import import_files  # noqa: PLC0415 - keep --help fast

    settings = get_settings()
    _check_format(fmt)
    with Progress(console=err_console, transient=True, disable=json_out) as progress:
        task = progress.add_task("importing", total=len(files))
        report = import_files(
            settings,
            files,
            fmt=fmt,
            now=parse_now(None),
            source=source,
            on_file=lambda _r: progress.advance(task),
        )
    for failed in report.errors:
        err_console.print(
            f"[bold red]error:[/] {' '.join(str(failed.error).split())}",
            highlight=False,
            soft_wrap=True,
        )
    if json_out:
        print_json(report.as_dict())
    else:
        table = Table("file", "format", "papers", "new", "seen")
        for f in report.files:
            table.add_row(
                f.path, f.format or "[red]error[/]", str(f.records), str(f.new), str(f.seen)
            )
        console.print(table)
        console.print(f"{report.new} new, {report.seen} seen before")
    if report.errors:
        raise typer.Exit(1)


Semantic = Annotated[
    bool,
    typer.Option("--semantic", help="Blend in sentence embeddings (needs the semantic extra)."),
]


def with_semantic(settings: Settings, semantic: bool) -> Settings:
    """``--semantic`` overrides the ``ranker`` setting for this command."""
    return settings.model_copy(update={"ranker": "semantic"}) if semantic else settings


@handle_errors
def rank(
    files: Annotated[list[Path] | None, typer.Argument(help="Listing files to rank.")] = None,
    keyword: Annotated[
        list[str] | None, typer.Option("--keyword", "-k", help="Interest phrase (^N weight).")
    ] = None,
    subscriber: Annotated[
        str | None,
        typer.Option(
            "--subscriber",
            help="Rank for this stored subscriber's profile and ratings instead of -k "
            "(without files: the store's papers of their current window).",
        ),
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", "-x", help="Exclusion.")] = None,
    require: Annotated[list[str] | None, typer.Option("--require", help="Required phrase.")] = None,
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="How many to show.")] = 10,
    min_score: Annotated[float | None, typer.Option(help="Score threshold.")] = None,
    fmt: FormatOpt = "auto",
    json_out: Json = False,
    semantic: Semantic = False,
) -> None:
    """Rank the papers of listing files for an ad-hoc profile (touches no store), or for a
    stored subscriber's profile and ratings (``--subscriber``; reads the store, changes
    nothing).

    Example: digest rank listing.txt -k "reinforcement learning" -k "pre-training^2" --top 5
    """
    from digest.digests.adhoc import rank_listings, rank_subscriber  # noqa: PLC0415 - imported when the command runs: --help stays fast
    from digest.ranking import get_ranker  # noqa: PLC0415 - imported when the command runs: --help stays fast

    settings = with_semantic(get_settings(), semantic)
    _check_format(fmt)
    if subscriber is not None:
        if keyword or exclude or require or min_score is not None:
            raise DigestError("--subscriber ranks with the stored profile: drop -k/-x/--require")
        results = rank_subscriber(
            settings,
            subscriber,
            files or [],
            top=top,
            now=parse_now(None),
            fmt=fmt,
            ranker=get_ranker(settings.ranker),
        )
    elif not files or not keyword:
        raise DigestError("give listing files and at least one -k, or --subscriber EMAIL")
    else:
        results = rank_listings(
            files,
            keyword,
            exclude or [],
            required=require or [],
            top=top,
            min_score=min_score,
            fmt=fmt,
            max_bytes=settings.max_listing_bytes,
            ranker=get_ranker(settings.ranker),
        )
    if json_out:
        print_json(results)
        return
    table = Table("#", "score", "title", "why")
    for number, row in enumerate(results, start=1):
        table.add_row(str(number), f"{row['score']:.2f}", row["title"], row["reason"])
    console.print(table)
    if not results:
        console.print("nothing matched")


@handle_errors
def run(
    now: Now = None,
    subscriber: Annotated[
        str | None, typer.Option("--subscriber", help="Build this subscriber's digest now.")
    ] = None,
    json_out: Json = False,
    semantic: Semantic = False,
) -> None:
    """Build and deliver the digests that are due, then write feeds.

    Example: digest run --now 2026-11-23T09:00:00Z --json
    """
    from digest.runner import run_digests  # noqa: PLC0415 - imported when the command runs: --help stays fast

    settings = with_semantic(get_settings(), semantic)
    with Progress(console=err_console, transient=True, disable=json_out) as progress:
        task = progress.add_task("delivering", total=None)
        report = run_digests(
            settings,
            now=parse_now(now),
            subscriber_email=subscriber,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    if json_out:
        print_json(report.as_dict())
    else:
        print_report(report)
    if report.failed:
        raise typer.Exit(1)


def print_report(report: RunReport) -> None:
    table = Table("subscriber", "status", "items", "top pick", "why")
    for d in report.digests:
        table.add_row(
            d.email, d.status, str(d.items), d.top_title or "", d.error or d.top_reason or ""
        )
    if report.digests:
        console.print(table)
    console.print(
        f"due {report.due}, sent {report.sent}, empty {report.empty}, failed {report.failed}"
    )


@handle_errors
def preview(
    email: Annotated[str, typer.Argument(help="Subscriber email.")],
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML email here.")] = None,
    text: Annotated[bool, typer.Option("--text", help="Print the text part.")] = False,
    json_out: Json = False,
    now: Now = None,
    semantic: Semantic = False,
) -> None:
    """Show the next digest of a subscriber without sending or recording anything.

    Example: digest preview ada@example.org --html /tmp/preview.html
    """
    from digest.render.assemble import render_preview  # noqa: PLC0415 - keep --help fast

    settings = with_semantic(get_settings(), semantic)
    view, rendered = render_preview(settings, email, now=parse_now(now))
    if json_out:
        print_json(
            {
                "email": view.subscriber_email,
                "period": view.period_label,
                "subject": rendered.subject,
                "items": [
                    {
                        "title": i.title,
                        "key": i.key,
                        "url": i.url,
                        "score": round(i.score, 4),
                        "matched": list(i.matched),
                        "reason": i.reason,
                    }
                    for i in view.items
                ],
            }
        )
        return
    if html:
        html.write_text(rendered.html, encoding="utf-8")
        console.print(f"wrote {html} ({len(view.items)} papers)")
    if text or not html:
        console.print(f"Subject: {rendered.subject}\n", highlight=False, markup=False)
        console.print(rendered.text, highlight=False, markup=False)


@handle_errors
def feed(
    email: Annotated[str, typer.Argument(help="Subscriber email.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="atom, rss or json.")] = "atom",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Print a subscriber's personal feed of delivered papers.

    Example: digest feed ada@example.org --format rss
    """
    import sys  # noqa: PLC0415 - only this command writes bytes to stdout

    from digest.render.assemble import subscriber_feed  # noqa: PLC0415 - keep --help fast

    data = subscriber_feed(get_settings(), email, fmt=fmt)
    if output:
        output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)


@handle_errors
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Demo data directory (recreated each time).")
    ] = Path("demo-output"),
    json_out: Json = False,
) -> None:
    """Run the whole pipeline on the bundled sample: import, sync demo subscribers, deliver.

    Example: digest demo --dir /tmp/digest-demo
    """
    from digest.demo import run_demo  # noqa: PLC0415 - imported when the command runs: --help stays fast

    result = run_demo(directory, console=err_console if json_out else console)
    if json_out:
        print_json(result)


@handle_errors
def config(json_out: Json = False) -> None:
    """Show every setting, its environment variable and its current value (secrets hidden).

    Example: DIGEST_DELIVERY=smtp digest config
    """
    from digest.config.settings import describe_settings  # noqa: PLC0415 - imported when the command runs: --help stays fast

    settings = get_settings()
    rows = []
    for name, env, _default, description in describe_settings():
        value = getattr(settings, name)
        shown = (
            "***"
            if "secret" in name or "password" in name
            else ("" if value is None else str(value))
        )
        rows.append({"name": name, "env": env, "value": shown, "description": description})
    if json_out:
        print_json(rows)
        return
    table = Table("setting", "value", "description")
    for row in rows:
        table.add_row(row["env"], row["value"], row["description"])
    console.print(table)


@db_app.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Apply pending database migrations (also done automatically on first use).

    Example: DIGEST_DATABASE_URL=postgresql+psycopg://digest@db/digest digest db upgrade
    """
    settings = get_settings()
    engine = db.create_db_engine(settings.resolved_database_url)
    try:
        before, after = db.upgrade(engine)
    finally:
        engine.dispose()
    shown = ", ".join(after) or "none"
    was = "" if before == after else f" (was {', '.join(before) or 'empty'})"
    console.print(f"database at revision {shown}{was}")


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
    app.command("rank")(rank)
    app.command("run")(run)
    app.command("preview")(preview)
    app.command("feed")(feed)
    app.command("demo")(demo)
    app.command("config")(config)
