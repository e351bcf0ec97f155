"""CLI options derived from the preference declaration (:mod:`digest.subscribers.fields`).

``@preference_options()`` adds one option per preference to a Typer command (``--keyword``,
``--exclude``, ``--frequency``, …); with ``edits=True`` also ``--add-X`` / ``--remove-X`` for
every list (``--add-keyword``, ``--remove-author``, …). The command receives what was given
as one :class:`~digest.subscribers.library.PreferenceInput` argument named ``preferences``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from digest.subscribers.fields import PREFERENCES, PROFILE_FIELDS, Preference
from digest.subscribers.library import PreferenceInput

F = TypeVar("F", bound=Callable[..., Any])
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def _option(p: Preference) -> tuple[str, Any]:
    names = (p.flag, p.short) if p.short else (p.flag,)
    hint: Any = list[str] | None if p.is_list else p.type | None
    return p.param, Annotated[hint, typer.Option(*names, help=p.help)]


def _edit_options(p: Preference) -> list[tuple[str, Any]]:
    singular = p.flag.removeprefix("--")
    return [
        (
            f"{verb}_{singular}".replace("-", "_"),
            Annotated[
                list[str] | None,
                typer.Option(f"--{verb}-{singular}", help=f"{verb.capitalize()} one: {p.help}"),
            ],
        )
        for verb in ("add", "remove")
    ]


def preference_options(*, edits: bool = False) -> Callable[[F], F]:
    """Give the decorated command an option per preference (see the module docstring)."""
    declared = [_option(p) for p in PREFERENCES]
    if edits:
        declared += [option for p in PROFILE_FIELDS for option in _edit_options(p)]

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        own = [p for p in signature.parameters.values() if p.name != "preferences"]
        extra = [
            inspect.Parameter(name, _KEYWORD, default=None, annotation=hint)
            for name, hint in declared
        ]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name, _ in declared}
            values = {p.name: given[p.param] for p in PREFERENCES}
            add = {p.name: given.get(f"add_{p.param}") or [] for p in PROFILE_FIELDS}
            remove = {p.name: given.get(f"remove_{p.param}") or [] for p in PROFILE_FIELDS}
            preferences = PreferenceInput.from_values(values, add=add, remove=remove)
            return func(*args, preferences=preferences, **kwargs)

        command.__signature__ = signature.replace(parameters=[*own, *extra])  # type: ignore[attr-defined]  # read by Typer through inspect.signature
        command.__annotations__ = {
            **{k: v for k, v in func.__annotations__.items() if k != "preferences"},
            **dict(declared),
        }
        return command  # type: ignore[return-value]  # same call shape for Typer

    return decorate
