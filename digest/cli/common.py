"""Shared CLI plumbing: settings from the root options, error translation, output.

Exit codes: 0 done; 1 the command ran and failed (the one-line error says why); 2 it could
not start: a wrong command line (Click's own errors, contradictory options), settings that
do not load (digest.toml, ``DIGEST_*`` variables, ``DIGEST_CONFIG``) or no store to read.

Imports stay light here (no settings, no database): ``digest --version`` and ``--help`` load
this module and should not pay for what a command needs only when it runs.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from digest.errors import DigestError, SettingsError, StoreMissingError, UsageError

if TYPE_CHECKING:
    from digest.config.settings import Settings

console = Console()
err_console = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")
EXIT_FAILED = 1
EXIT_USAGE = 2
_USAGE_ERRORS = (SettingsError, StoreMissingError, UsageError)


def exit_code(exc: DigestError) -> int:
    """2 when the command could not start (usage, settings, no store), else 1."""
    return EXIT_USAGE if isinstance(exc, _USAGE_ERRORS) else EXIT_FAILED


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def say(text: str) -> None:
    """A line (or lines) of plain text on stdout: no markup, no highlighting, no wrapping."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """``error: …`` on stderr, always exactly one line."""
    err_console.print(
        "[bold red]error:[/] " + _escape(one_line(message)), highlight=False, soft_wrap=True
    )


def print_warning(message: str) -> None:
    """``warning: …`` on stderr, one line."""
    err_console.print(
        "[bold yellow]warning:[/] " + _escape(one_line(message)), highlight=False, soft_wrap=True
    )


def _escape(text: str) -> str:
    from rich.markup import escape  # noqa: PLC0415 - tiny, but only needed on output

    return escape(text)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one line on stderr and exit code 1 or 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except DigestError as exc:
            print_error(str(exc))
            raise typer.Exit(exit_code(exc)) from None

    return wrapper


def refuse_together(given: dict[str, bool]) -> None:
    """UsageError when more than one of the options (``{"--json": True, …}``) was given."""
    names = [name for name, present in given.items() if present]
    if len(names) > 1:
        listed = ", ".join(names[:-1]) + " and " + names[-1]
        raise UsageError(f"{listed} cannot be used together")


# The root command's --data-dir / --database-url, set by its callback for this invocation.
_overrides: dict[str, Any] = {}


def set_overrides(values: dict[str, Any]) -> None:
    _overrides.clear()
    _overrides.update(values)


def overrides() -> dict[str, Any]:
    """The root options given for this invocation (``--data-dir``, ``--database-url``)."""
    return dict(_overrides)


def get_settings() -> Settings:
    """Settings from the environment and digest.toml, with the root command's overrides."""
    from digest.config.logs import configure_logging  # noqa: PLC0415 - keep --version fast
    from digest.config.settings import load_settings  # noqa: PLC0415 - keep --version fast

    settings = load_settings(**_overrides)
    configure_logging(level=settings.log_level, json_lines=settings.log_json)
    return settings


def parse_now(value: str | None) -> datetime:
    """``--now`` as an aware UTC datetime (naive values are taken as UTC)."""
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--now: not an ISO 8601 time: {value!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else mixed in."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
