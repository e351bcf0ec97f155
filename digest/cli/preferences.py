"""CLI options derived from the preference declaration (:mod:`digest.subscribers.fields`).

``@preference_options()`` adds one option per preference to a Typer command (``--keyword``,
``--exclude``, ``--frequency``, …); with ``edits=True`` also ``--add-X`` / ``--remove-X`` for
every list (``--add-keyword``, ``--remove-author``, …). The command receives what was given
as one :class:`~digest.subscribers.library.PreferenceInput` argument named ``preferences``,
checked by the preference model: a refused value is one line naming its option
(``--hour: must be a whole number from 0 to 23, not 25``). Replacing a list and editing it
in one command (``--keyword`` with ``--add-keyword``) is refused.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_type_hints

import typer

from digest.errors import PreferenceError, UsageError
from digest.subscribers.fields import BY_NAME, PREFERENCES, PROFILE_FIELDS, Preference

if TYPE_CHECKING:
    from digest.subscribers.library import PreferenceInput

F = TypeVar("F", bound=Callable[..., Any])
_KEYWORD = inspect.Parameter.KEYWORD_ONLY


def _option(p: Preference) -> tuple[str, Any]:
    names = (p.flag, p.short) if p.short else (p.flag,)
    hint: Any = list[str] | None if p.is_list else p.type | None
    return p.param, Annotated[hint, typer.Option(*names, help=p.help, metavar=p.metavar)]


def _edit_options(p: Preference) -> list[tuple[str, Any]]:
    singular = p.flag.removeprefix("--")
    return [
        (
            f"{verb}_{singular}".replace("-", "_"),
            Annotated[
                list[str] | None,
                typer.Option(
                    f"--{verb}-{singular}",
                    help=f"{verb.capitalize()} one: {p.help}",
                    metavar=p.metavar,
                ),
            ],
        )
        for verb in ("add", "remove")
    ]


def _preferences(given: dict[str, Any]) -> PreferenceInput:
    from digest.subscribers.library import PreferenceInput  # noqa: PLC0415 - keep --help fast

    values = {p.name: given[p.param] for p in PREFERENCES}
    add = {p.name: given.get(f"add_{p.param}") or [] for p in PROFILE_FIELDS}
    remove = {p.name: given.get(f"remove_{p.param}") or [] for p in PROFILE_FIELDS}
    for p in PROFILE_FIELDS:
        if values[p.name] is not None and (add[p.name] or remove[p.name]):
            edit = "--add" if add[p.name] else "--remove"
            raise UsageError(
                f"{p.flag} replaces the whole list; {edit}-{p.flag.removeprefix('--')} "
                "edits it: use one or the other"
            )
    try:
        return PreferenceInput.from_values(values, add=add, remove=remove)
    except PreferenceError as exc:  # name the option the value came in
        raise PreferenceError(exc.field, exc.problem, key=BY_NAME[exc.field].flag) from None


def preference_options(*, edits: bool = False) -> Callable[[F], F]:
    """Give the decorated command an option per preference (see the module docstring)."""
    declared = [_option(p) for p in PREFERENCES]
    if edits:
        declared += [option for p in PROFILE_FIELDS for option in _edit_options(p)]

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        # The command's own annotations are strings (postponed evaluation) naming aliases in
        # its module (Json, Email): resolve them there, not in this module.
        hints = get_type_hints(func, localns={"PreferenceInput": object}, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in signature.parameters.values()
            if p.name != "preferences"
        ]
        extra = [
            inspect.Parameter(name, _KEYWORD, default=None, annotation=hint)
            for name, hint in declared
        ]

        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name, _ in declared}
            preferences = _preferences(given)
            return func(*args, preferences=preferences, **kwargs)

        command.__signature__ = signature.replace(parameters=[*own, *extra])  # type: ignore[attr-defined]  # read by Typer through inspect.signature
        command.__annotations__ = {
            **{p.name: p.annotation for p in own},
            **dict(declared),
        }
        return command  # type: ignore[return-value]  # same call shape for Typer

    return decorate
