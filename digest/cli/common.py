"""Shared CLI plumbing: settings from the root options, error translation, output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from digest.config.logs import configure_logging
from digest.config.settings import Settings, load_settings
from digest.errors import DigestError

console = Console()
err_console = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one line on stderr and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except DigestError as exc:
            message = " ".join(str(exc).split())  # always exactly one line
            err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


# The root command's --data-dir / --database-url, set by its callback for this invocation.
_overrides: dict[str, Any] = {}


def set_overrides(values: dict[str, Any]) -> None:
    _overrides.clear()
    _overrides.update(values)


def get_settings() -> Settings:
    """Settings from the environment and digest.toml, with the root command's overrides."""
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
        raise DigestError(f"--now: not an ISO 8601 time: {value!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else mixed in."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
