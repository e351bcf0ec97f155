"""Top-level commands: import, rank, run, preview, feed, demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from digest.cli.common import (
    console,
    err_console,
    get_settings,
    handle_errors,
    parse_now,
    print_error,
    print_json,
    refuse_together,
    say,
)
from digest.config.formats import FORMATS
from digest.errors import UsageError

if TYPE_CHECKING:
    from rich.progress import TaskID

    from digest.config.settings import Settings
    from digest.render.views import DigestView
    from digest.runner import RunReport

FORMAT_CHOICES = ("auto", *FORMATS)
FEED_CHOICES = ("atom", "rss", "json")
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        metavar="FORMAT",
        help=f"Listing format: {', '.join(FORMAT_CHOICES)}.",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Now = Annotated[
    str | None,
    typer.Option("--now", metavar="TIME", help="Pretend it is this ISO 8601 time (default: now)."),
]


def _check_format(fmt: str) -> str:
    if fmt not in FORMAT_CHOICES:
        raise UsageError(f"--format: unknown format {fmt!r}: use {', '.join(FORMAT_CHOICES)}")
    return fmt


class _ImportProgress:
    """One progress line per file: reading it, then storing its papers as they go in."""

    def __init__(self, *, disable: bool) -> None:
        from rich.progress import (  # noqa: PLC0415 - only import shows progress
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=disable,
        )
        self.tasks: dict[str, TaskID] = {}

    def update(self, path: str, done: int, total: int) -> None:
        name = Path(path).name
        task = self.tasks.get(path)
        if task is None:
            task = self.tasks[path] = self.progress.add_task(f"reading {name}", total=None)
        if total:
            papers = total // 2
            self.progress.update(
                task, description=f"storing {papers:,} papers of {name}", total=total
            )
            self.progress.update(task, completed=done)

    def __enter__(self) -> _ImportProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)


@handle_errors
def import_(
    files: Annotated[list[Path], typer.Argument(help="Listing files (.gz is read transparently).")],
    fmt: FormatOpt = "auto",
    source: Annotated[str | None, typer.Option(help="Source name to record.")] = None,
    json_out: Json = False,
) -> None:
    """Import listing files; report how many papers are new and how many were seen before.
    Shows each file's progress, paper by paper, while it is stored.

    Example: digest import daily_papers.json arxiv-cs.LG.rss --json
    """
    from rich.table import Table  # noqa: PLC0415 - keep --help fast

    from digest.sources.imports import import_files  # noqa: PLC0415 - keep --help fast

    _check_format(fmt)
    settings = get_settings()
    with _ImportProgress(disable=json_out) as progress:
        report = import_files(
            settings,
            files,
            fmt=fmt,
            now=parse_now(None),
            source=source,
            on_progress=progress.update,
        )
    for failed in report.errors:
        print_error(str(failed.error))
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
        list[str] | None,
        typer.Option("--keyword", "-k", metavar="PHRASE", help="Interest phrase (^N weight)."),
    ] = None,
    subscriber: Annotated[
        str | None,
        typer.Option(
            "--subscriber",
            metavar="EMAIL",
            help="Rank for this stored subscriber's profile and ratings instead of -k "
            "(without files: the store's papers of their current window).",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", "-x", metavar="PHRASE", help="Exclusion.")
    ] = None,
    require: Annotated[
        list[str] | None, typer.Option("--require", metavar="PHRASE", help="Required phrase.")
    ] = None,
    top: Annotated[int, typer.Option("--top", "-n", min=1, help="How many to show.")] = 10,
    min_score: Annotated[float | None, typer.Option(help="Score threshold.")] = None,
    fmt: FormatOpt = "auto",
    json_out: Json = False,
    semantic: Semantic = False,
) -> None:
    """Rank the papers of listing files for an ad-hoc profile (touches no store), or for a
    stored subscriber's profile and ratings (--subscriber; reads the store, changes
    nothing).

    Example: digest rank listing.txt -k "reinforcement learning" -k "pre-training^2" --top 5
    """
    from rich.table import Table  # noqa: PLC0415 - keep --help fast

    from digest.digests.adhoc import rank_listings, rank_subscriber  # noqa: PLC0415 - keep --help fast
    from digest.ranking import get_ranker  # noqa: PLC0415 - keep --help fast

    _check_format(fmt)
    settings = with_semantic(get_settings(), semantic)
    if subscriber is not None:
        if keyword or exclude or require or min_score is not None:
            raise UsageError("--subscriber ranks with the stored profile: drop -k/-x/--require")
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
        raise UsageError("give listing files and at least one -k, or --subscriber EMAIL")
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
        str | None,
        typer.Option("--subscriber", metavar="EMAIL", help="Build this subscriber's digest now."),
    ] = None,
    json_out: Json = False,
    semantic: Semantic = False,
) -> None:
    """Build and deliver the digests that are due, then write feeds.

    Example: digest run --now 2026-11-23T09:00:00Z --json
    """
    from rich.progress import Progress  # noqa: PLC0415 - keep --help fast

    from digest.runner import run_digests  # noqa: PLC0415 - keep --help fast

    when = parse_now(now)
    settings = with_semantic(get_settings(), semantic)
    with Progress(console=err_console, transient=True, disable=json_out) as progress:
        task = progress.add_task("delivering", total=None)
        report = run_digests(
            settings,
            now=when,
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
    from rich.table import Table  # noqa: PLC0415 - keep --help fast

    table = Table("subscriber", "status", "items", "top pick", "why")
    for d in report.digests:
        table.add_row(
            d.email, d.status, str(d.items), d.top_title or "", d.error or d.top_reason or ""
        )
    if report.digests:
        console.print(table)
    summary = f"due {report.due}, sent {report.sent}, empty {report.empty}, failed {report.failed}"
    if report.deferred_jobs:
        summary += f", queued {report.queued} in {report.deferred_jobs} job(s) for `digest worker`"
    console.print(summary)


def _preview_json(view: DigestView, subject: str, would_send: bool) -> dict[str, Any]:
    return {
        "email": view.subscriber_email,
        "period": view.period_label,
        "subject": subject,
        "would_send": would_send,
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


@handle_errors
def preview(
    email: Annotated[str, typer.Argument(help="Subscriber email.")],
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML email here.")] = None,
    text: Annotated[bool, typer.Option("--text", help="Print the text part.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the digest as JSON (not with --html or --text).")
    ] = False,
    now: Now = None,
    semantic: Semantic = False,
) -> None:
    """Show the next digest of a subscriber without sending or recording anything. With
    nothing new, it says whether a note would go out (DIGEST_SEND_EMPTY) instead of showing
    one that would not.

    Example: digest preview ada@example.org --html /tmp/preview.html
    """
    from digest.render.assemble import render_preview  # noqa: PLC0415 - keep --help fast

    refuse_together({"--json": json_out, "--html": html is not None})
    refuse_together({"--json": json_out, "--text": text})
    when = parse_now(now)
    settings = with_semantic(get_settings(), semantic)
    view, rendered = render_preview(settings, email, now=when)
    would_send = bool(view.items) or settings.send_empty
    if json_out:
        print_json(_preview_json(view, rendered.subject, would_send))
        return
    if not would_send:
        say(
            f"Nothing new for {view.subscriber_email} ({view.period_label}): no email would "
            "be sent (DIGEST_SEND_EMPTY is false) and the feeds stay as they are."
        )
        if html:
            say(f"{html} not written: there is no email to show")
        return
    if html:
        html.write_text(rendered.html, encoding="utf-8")
        say(f"wrote {html} ({len(view.items)} papers)")
    if text or not html:
        say(f"Subject: {rendered.subject}\n")
        say(rendered.text)


@handle_errors
def feed(
    email: Annotated[str, typer.Argument(help="Subscriber email.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="|".join(FEED_CHOICES), help="Feed format.")
    ] = "atom",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Print a subscriber's personal feed of delivered papers.

    Example: digest feed ada@example.org --format rss
    """
    import sys  # noqa: PLC0415 - only this command writes bytes to stdout

    from digest.render.feed_export import subscriber_feed  # noqa: PLC0415 - keep --help fast

    if fmt not in FEED_CHOICES:
        raise UsageError(f"--format: unknown feed format {fmt!r}: use atom, rss or json")
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
    from digest.demo import run_demo  # noqa: PLC0415 - keep --help fast

    result = run_demo(directory, console=err_console if json_out else console)
    if json_out:
        print_json(result)


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
    app.command("rank")(rank)
    app.command("run")(run)
    app.command("preview")(preview)
    app.command("feed")(feed)
    app.command("demo")(demo)
