"""``digest subscribers …``: manage subscribers and their profiles.

Each command parses its options, makes one call into :mod:`digest.subscribers.admin` (export
and import: :mod:`digest.digests.transfer`) and prints; the profile and schedule options come
from the preference declaration (:mod:`digest.cli.preferences`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from digest.cli.common import console, get_settings, handle_errors, print_json, say
from digest.cli.help import App
from digest.cli.preferences import preference_options
from digest.errors import UsageError
from digest.subscribers.fields import STATUSES

if TYPE_CHECKING:
    from rich.table import Table

    from digest.subscribers.library import PreferenceInput

app = App(help="Manage subscribers and their profiles.")

Email = Annotated[str, typer.Argument(help="The subscriber's email address.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _now() -> datetime:
    return datetime.now(UTC)


@app.command("add")
@handle_errors
@preference_options()
def add(email: Email, preferences: PreferenceInput, json_out: Json = False) -> None:
    """Add an active subscriber (admin-added: no confirmation email).

    Example: digest subscribers add ada@example.org -k "reinforcement learning" -k "RLHF^2"
    """
    from digest.subscribers import admin  # noqa: PLC0415 - keep --help fast

    info = admin.add(get_settings(), email, preferences, now=_now())
    if json_out:
        print_json(info)
    else:
        say(f"added {info['email']} ({info['frequency']}, {len(info['keywords'])} keywords)")


@app.command("list")
@handle_errors
def list_(
    status: Annotated[
        str | None, typer.Option(help="Only this status.", metavar="|".join(STATUSES))
    ] = None,
    json_out: Json = False,
) -> None:
    """List subscribers.

    Example: digest subscribers list --status active
    """
    from rich.table import Table  # noqa: PLC0415 - keep --help fast

    from digest.subscribers import admin  # noqa: PLC0415 - keep --help fast

    rows = admin.listing(get_settings(), status=status)
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


def _show_table(info: dict[str, Any]) -> Table:
    from rich.table import Table  # noqa: PLC0415 - keep --help fast
    from rich.text import Text  # noqa: PLC0415 - keep --help fast

    table = Table.grid(padding=(0, 2))
    for key, value in info.items():
        if isinstance(value, dict):
            shown = "\n".join(f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list):
            shown = ", ".join(value)
        else:
            shown = str(value)
        table.add_row(Text(key, style="bold"), Text(shown))
    return table


@app.command("show")
@handle_errors
def show(email: Email, json_out: Json = False) -> None:
    """Show one subscriber: profile, schedule, ratings, feed and unsubscribe URLs.

    Example: digest subscribers show ada@example.org --json
    """
    from digest.subscribers import admin  # noqa: PLC0415 - keep --help fast

    info = admin.show(get_settings(), email)
    if json_out:
        print_json(info)
    else:
        ratings = info.pop("ratings", [])
        console.print(_show_table(info))
        for r in ratings:  # the reader's "more / less like this" feedback
            said = "more like this" if r["vote"] > 0 else "less like this"
            console.print(f"rated {said}: {r['title']} ({r['key']})", highlight=False)


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    def shown(value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(value) or "(none)"
        return "(none)" if value is None else str(value)

    return [
        f"{key} {shown(before[key])} → {shown(value)}"
        for key, value in after.items()
        if before.get(key) != value
    ]


@app.command("edit")
@handle_errors
@preference_options(edits=True)
def edit(email: Email, preferences: PreferenceInput, json_out: Json = False) -> None:
    """Change a subscriber. --keyword, --exclude, … replace those lists; --add-*/--remove-*
    edit single entries (matched ignoring weight and case: --remove-keyword rlhf removes
    RLHF^2; --add-keyword "RLHF^3" changes its weight). Without any option it is refused.

    Example: digest subscribers edit ada@example.org --add-keyword "world models" --frequency daily
    """
    from digest.subscribers import admin  # noqa: PLC0415 - keep --help fast

    if preferences.is_empty:
        raise UsageError(
            "nothing to change: give at least one option (digest subscribers edit --help)"
        )
    before, after = admin.edit(get_settings(), email, preferences, now=_now())
    if json_out:
        print_json(after)
        return
    changes = _changes(before, after)
    if changes:
        say(f"updated {after['email']}: " + "; ".join(changes))
    else:
        say(f"nothing changed: {after['email']} already has these values")


def _status_command(status: str, verb: str) -> None:
    @app.command(verb)
    @handle_errors
    def command(email: Email) -> None:
        from digest.subscribers import admin  # noqa: PLC0415 - keep --help fast

        address, now_status = admin.change_status(get_settings(), email, status, now=_now())
        say(f"{address} is {now_status}")

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
    from digest.subscribers import admin  # noqa: PLC0415 - keep --help fast

    settings = get_settings()
    if not yes:
        typer.confirm(f"Delete {email} and their history?", abort=True)
    admin.remove(settings, email)
    say(f"removed {email}")


@app.command("export")
@handle_errors
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File (default stdout).")
    ] = None,
) -> None:
    """Export every subscriber as JSON, read back by digest subscribers import: preferences,
    tokens (mailed feed and unsubscribe links keep working) and the digests each one already
    received (never sent again). The format is docs/subscriber-export.md.

    Example: digest subscribers export -o subscribers.json
    """
    from digest.digests.transfer import export_all  # noqa: PLC0415 - keep --help fast

    data = export_all(get_settings(), now=_now())
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
        digests = sum(len(s["digests"]) for s in data["subscribers"])
        say(
            f"exported {len(data['subscribers'])} subscriber(s), {digests} digest(s) and "
            f"{len(data['papers'])} paper(s) to {output}"
        )
    else:
        typer.echo(text, nl=False)


@app.command("import")
@handle_errors
def import_(
    file: Annotated[Path, typer.Argument(help="JSON written by export.")],
    update: Annotated[bool, typer.Option(help="Update subscribers that already exist.")] = False,
    json_out: Json = False,
) -> None:
    """Import subscribers from an export, with their tokens and history; all-or-nothing.

    Example: digest subscribers import subscribers.json --update
    """
    from digest.digests.transfer import import_file  # noqa: PLC0415 - keep --help fast

    result = import_file(get_settings(), file, update=update, now=_now())
    if json_out:
        print_json(result.as_dict())
    else:
        say(result.summary())


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
    from digest.subscribers import admin  # noqa: PLC0415 - keep --help fast

    result = admin.sync(get_settings(), directory, prune=prune, now=_now())
    if json_out:
        print_json(result.as_dict())
    else:
        say(result.summary(removals=True))
