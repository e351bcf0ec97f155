"""``digest subscribers …``: manage subscribers and their profiles."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from digest import db
from digest.cli.common import console, get_settings, handle_errors, print_json
from digest.errors import ProfileError
from digest.schedule import WEEKDAYS
from digest.subscriber_files import export_subscribers, import_subscribers, sync_directory
from digest.subscribers import (
    ProfileSpec,
    SubscriberFields,
    add_subscriber,
    describe,
    edit_subscriber,
    get_subscriber,
    interests_of,
    list_subscribers,
    remove_subscriber,
    set_status,
)

app = typer.Typer(help="Manage subscribers and their profiles.", no_args_is_help=True)

Keyword = Annotated[
    list[str] | None,
    typer.Option("--keyword", "-k", help="Interest phrase; weight with ^N, e.g. 'RLHF^2'."),
]
Exclude = Annotated[
    list[str] | None, typer.Option("--exclude", "-x", help="Drop papers matching this phrase.")
]
Require = Annotated[
    list[str] | None, typer.Option("--require", help="Every pick must match this phrase.")
]
Author = Annotated[list[str] | None, typer.Option("--author", help="Author name to follow.")]
Category = Annotated[
    list[str] | None, typer.Option("--category", help="arXiv category, e.g. cs.LG.")
]
Name = Annotated[str | None, typer.Option("--name", help="Display name.")]
Frequency = Annotated[str | None, typer.Option("--frequency", help="daily, weekly or off.")]
Weekday = Annotated[str | None, typer.Option("--weekday", help="Weekday of weekly digests.")]
Hour = Annotated[int | None, typer.Option("--hour", help="Local hour digests are sent (0-23).")]
Timezone = Annotated[str | None, typer.Option("--timezone", help="IANA time zone.")]
MaxItems = Annotated[int | None, typer.Option("--max-items", help="Papers per digest.")]
Email = Annotated[str, typer.Argument(help="The subscriber's email address.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _now() -> datetime:
    return datetime.now(UTC)


def _fields(
    name: str | None,
    frequency: str | None,
    weekday: str | None,
    hour: int | None,
    timezone: str | None,
    max_items: int | None,
) -> SubscriberFields:
    return SubscriberFields(
        name=name,
        frequency=frequency,
        weekday=weekday,
        hour=hour,
        timezone=timezone,
        max_items=max_items,
    )


@app.command("add")
@handle_errors
def add(
    email: Email,
    keyword: Keyword = None,
    exclude: Exclude = None,
    require: Require = None,
    author: Author = None,
    category: Category = None,
    name: Name = None,
    frequency: Frequency = None,
    weekday: Weekday = None,
    hour: Hour = None,
    timezone: Timezone = None,
    max_items: MaxItems = None,
    json_out: Json = False,
) -> None:
    """Add an active subscriber (admin-added: no confirmation email).

    Example: digest subscribers add ada@example.org -k "reinforcement learning" -k "RLHF^2"
    """
    settings = get_settings()
    spec = ProfileSpec(keyword or [], exclude or [], require or [], author or [], category or [])
    with db.transaction(settings) as session:
        subscriber = add_subscriber(
            session,
            email=email,
            profile=spec,
            fields=_fields(name, frequency, weekday, hour, timezone, max_items),
            settings=settings,
            now=_now(),
        )
        info = describe(subscriber, interests_of(session, subscriber), settings)
    if json_out:
        print_json(info)
    else:
        console.print(
            f"added {info['email']} ({info['frequency']}, {len(info['keywords'])} keywords)"
        )


@app.command("list")
@handle_errors
def list_(
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    json_out: Json = False,
) -> None:
    """List subscribers.

    Example: digest subscribers list --status active
    """
    settings = get_settings()
    with db.transaction(settings) as session:
        rows = [
            describe(s, interests_of(session, s), settings)
            for s in list_subscribers(session, status=status)
        ]
    if json_out:
        print_json(rows)
        return
    table = Table("email", "status", "frequency", "keywords", "excludes")
    for row in rows:
        table.add_row(
            row["email"],
            row["status"],
            row["frequency"],
            ", ".join(row["keywords"]),
            ", ".join(row["excludes"]),
        )
    console.print(table)
    console.print(f"{len(rows)} subscriber(s)")


@app.command("show")
@handle_errors
def show(email: Email, json_out: Json = False) -> None:
    """Show one subscriber: profile, schedule, feed and unsubscribe URLs.

    Example: digest subscribers show ada@example.org --json
    """
    settings = get_settings()
    with db.transaction(settings) as session:
        subscriber = get_subscriber(session, email)
        info = describe(subscriber, interests_of(session, subscriber), settings)
    if json_out:
        print_json(info)
        return
    table = Table.grid(padding=(0, 2))
    for key, value in info.items():
        if isinstance(value, dict):
            shown = "\n".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            shown = ", ".join(value)
        else:
            shown = str(value)
        table.add_row(f"[bold]{key}[/]", shown)
    console.print(table)


@app.command("edit")
@handle_errors
def edit(
    email: Email,
    keyword: Keyword = None,
    exclude: Exclude = None,
    add_keyword: Annotated[list[str] | None, typer.Option(help="Add one keyword.")] = None,
    remove_keyword: Annotated[list[str] | None, typer.Option(help="Remove one keyword.")] = None,
    add_exclude: Annotated[list[str] | None, typer.Option(help="Add one exclusion.")] = None,
    remove_exclude: Annotated[list[str] | None, typer.Option(help="Remove one exclusion.")] = None,
    name: Name = None,
    frequency: Frequency = None,
    weekday: Weekday = None,
    hour: Hour = None,
    timezone: Timezone = None,
    max_items: MaxItems = None,
) -> None:
    """Change a subscriber. --keyword/--exclude replace those lists; --add-*/--remove-* edit them.

    Example: digest subscribers edit ada@example.org --add-keyword "world models" --frequency daily
    """
    settings = get_settings()
    replace = None
    if keyword is not None or exclude is not None:
        with db.transaction(settings) as session:
            from digest.subscribers import spec_of  # noqa: PLC0415

            replace = spec_of(interests_of(session, get_subscriber(session, email)))
        if keyword is not None:
            replace.keywords = keyword
        if exclude is not None:
            replace.excludes = exclude
    with db.transaction(settings) as session:
        subscriber = edit_subscriber(
            session,
            email,
            fields=_fields(name, frequency, weekday, hour, timezone, max_items),
            now=_now(),
            profile=replace,
            add=ProfileSpec(add_keyword or [], add_exclude or []),
            remove=ProfileSpec(remove_keyword or [], remove_exclude or []),
        )
        info = describe(subscriber, interests_of(session, subscriber), settings)
    console.print(f"updated {info['email']}: keywords {', '.join(info['keywords'])}")


def _status_command(status: str, verb: str) -> None:
    @app.command(verb)
    @handle_errors
    def command(email: Email) -> None:
        settings = get_settings()
        with db.transaction(settings) as session:
            subscriber = set_status(session, email, status, now=_now())
        console.print(f"{subscriber.email} is {subscriber.status}")

    what = (
        "Stop sending to a subscriber (keeps the profile)."
        if verb == "pause"
        else ("Resume a paused subscriber.")
    )
    command.__doc__ = f"{what}\n\nExample: digest subscribers {verb} ada@example.org"


_status_command("paused", "pause")
_status_command("active", "resume")


@app.command("remove")
@handle_errors
def remove(
    email: Email,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a subscriber with their profile, digests and history.

    Example: digest subscribers remove ada@example.org --yes
    """
    settings = get_settings()
    if not yes:
        typer.confirm(f"Delete {email} and their history?", abort=True)
    with db.transaction(settings) as session:
        remove_subscriber(session, email)
    console.print(f"removed {email}")


@app.command("export")
@handle_errors
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Export all subscribers as JSON (read back by ``import``).

    Example: digest subscribers export -o subscribers.json
    """
    settings = get_settings()
    with db.transaction(settings) as session:
        data = export_subscribers(session, settings=settings)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
        console.print(f"exported {len(data)} subscriber(s) to {output}")
    else:
        typer.echo(text, nl=False)


@app.command("import")
@handle_errors
def import_(
    file: Annotated[Path, typer.Argument(help="JSON written by export.")],
    update: Annotated[bool, typer.Option(help="Update subscribers that already exist.")] = False,
    json_out: Json = False,
) -> None:
    """Import subscribers from an export; all-or-nothing.

    Example: digest subscribers import subscribers.json --update
    """
    settings = get_settings()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{file}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{file}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    with db.transaction(settings) as session:
        result = import_subscribers(
            session, data, settings=settings, now=_now(), where=str(file), update=update
        )
    if json_out:
        print_json(result.as_dict())
    else:
        console.print(
            f"added {len(result.added)}, updated {len(result.updated)}, "
            f"unchanged {len(result.unchanged)}"
        )


@app.command("sync")
@handle_errors
def sync(
    directory: Annotated[Path, typer.Argument(help="Directory of *.toml profile files.")],
    prune: Annotated[
        bool, typer.Option(help="Remove synced subscribers whose file is gone.")
    ] = False,
    json_out: Json = False,
) -> None:
    """Make the store match the TOML profile files in a directory.

    Example: digest subscribers sync subscribers/ --prune
    """
    settings = get_settings()
    with db.transaction(settings) as session:
        result = sync_directory(session, directory, settings=settings, now=_now(), prune=prune)
    if json_out:
        print_json(result.as_dict())
    else:
        console.print(
            f"added {len(result.added)}, updated {len(result.updated)}, "
            f"unchanged {len(result.unchanged)}, removed {len(result.removed)}"
        )


__all__ = ["WEEKDAYS", "app"]
