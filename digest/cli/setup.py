"""``digest init``, ``digest config`` and ``digest db upgrade``: setting up and looking."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from digest.cli.common import console, get_settings, handle_errors, overrides, print_json, say
from digest.cli.help import App

db_app = App(help="Database maintenance.")
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _migrate() -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Create or upgrade the configured store (and the queue's schema when deliveries are
    queued): (where, revisions before, after)."""
    from digest.store import db  # noqa: PLC0415 - keep --help fast

    settings = get_settings()
    engine = db.get_engine(settings, migrate=False)
    before, after = db.upgrade(engine)
    if settings.queue == "procrastinate":
        from digest.queue import ensure_schema  # noqa: PLC0415 - procrastinate only when queued

        applied = ensure_schema(db.get_engine(settings))
        say("queue schema " + ("applied" if applied else "already present"))
    return db.store_location(settings), before, after


@handle_errors
def init() -> None:
    """Create the store, or bring an existing one up to date.

    The store is the SQLite file in the data directory, or the tables in the PostgreSQL
    database of DIGEST_DATABASE_URL. Read-only commands (status, subscribers list, preview …)
    never create one; write commands (import, fetch, subscribers add …) do it on their own.

    Example: DIGEST_DATA_DIR=~/digest digest init
    """
    where, before, after = _migrate()
    revision = ", ".join(after)
    if not before:
        say(f"created a store at {where} (revision {revision})")
    elif before != after:
        was = ", ".join(before)
        say(f"upgraded the store at {where} ({was} → {revision})")
    else:
        say(f"the store at {where} is ready (revision {revision})")


@db_app.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Apply pending database migrations (write commands also do it on first use).

    Example: DIGEST_DATABASE_URL=postgresql+psycopg://digest@db/digest digest db upgrade
    """
    _where, before, after = _migrate()
    shown = ", ".join(after) or "none"
    was = "" if before == after else f" (was {', '.join(before) or 'empty'})"
    console.print(f"database at revision {shown}{was}")


@handle_errors
def config(json_out: Json = False) -> None:
    """Show the settings file that was read and every setting's value.

    Each setting is listed with its environment variable, its value (secrets hidden), where
    the value comes from (option, environment, file or default) and what it does. With
    --json the values keep their types (numbers, booleans, null, lists).

    Example: DIGEST_DELIVERY=smtp digest config --json
    """
    from rich.table import Table  # noqa: PLC0415 - keep --help fast
    from rich.text import Text  # noqa: PLC0415 - keep --help fast

    from digest.config.settings import (  # noqa: PLC0415 - keep --help fast
        describe_settings,
        setting_origins,
        setting_values,
    )
    from digest.config.settings_files import config_file  # noqa: PLC0415 - keep --help fast

    settings = get_settings()
    path = config_file()
    values = setting_values(settings)
    origins = setting_origins(overrides())
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "env": env,
            "value": values[name],
            "from": origins[name],
            "description": description,
        }
        for name, env, _default, description in describe_settings()
    ]
    file = str(path.absolute()) if path else None
    if json_out:
        print_json({"file": file, "settings": rows})
        return
    if file:
        say(f"settings file: {file}")
    else:
        say("settings file: none (no digest.toml in this directory; DIGEST_CONFIG is not set)")
    table = Table("setting", "value", "from", "description")
    for row in rows:
        cells = (row["env"], _shown(row["value"]), row["from"], row["description"])
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)


def _shown(value: Any) -> str:
    import json  # noqa: PLC0415 - only lists need it

    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("config")(config)
    app.add_typer(db_app, name="db")
