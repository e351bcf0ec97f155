"""How ``--help`` reads: plain words for option types, literal brackets, no stray markup.

Typer shows an option's Python type (``<bool>``, ``<list[Path]>``) and an argument's name in
braces (``{email}``), and Rich markup in help text eats ``[…]`` (``[[sources]]`` would vanish).
:class:`App` is a ``typer.Typer`` whose commands and groups fix that when they are built:
every help text is escaped, flags show no type, other options show ``TEXT``, ``INTEGER``,
``NUMBER``, ``PATH`` or their choices, repeatable ones say so, and arguments read ``EMAIL``.
An explicit ``metavar=`` on an option wins.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption
from typer.models import CommandFunctionType

_TYPE_NAMES: dict[Any, str] = {str: "TEXT", int: "INTEGER", float: "NUMBER", Path: "PATH"}
REPEATABLE = " Repeat it for more."


def _metavar(param: TyperOption | TyperArgument) -> str:
    descriptor = param.type_descriptor
    if descriptor.is_choice:
        return "|".join(str(choice) for choice in descriptor.choices or ())
    annotation = descriptor.annotation
    args = getattr(annotation, "__args__", None)
    if descriptor.is_list and args:
        annotation = args[0]
    if descriptor.is_path:
        annotation = Path
    return _TYPE_NAMES.get(annotation, "VALUE")


class Argument(TyperArgument):
    """An argument shown by its name alone: ``EMAIL`` (``[NAME]`` when optional)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name says what it is

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        return name if self.required else f"[{name}]"


def reflow(text: str) -> str:
    """Paragraphs as single lines (Rich help keeps a docstring's line breaks), escaped."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(escape(" ".join(p.split())) for p in paragraphs)


def _first_sentence(text: str) -> str:
    paragraph = inspect.cleandoc(text).split("\n\n")[0]
    flat = " ".join(paragraph.split())
    end = flat.find(". ")
    return flat if end < 0 else flat[: end + 1]


def tidy(command: Any) -> None:
    """Make one command's help read well (see the module docstring)."""
    if command.help and not command.short_help:
        command.short_help = escape(_first_sentence(command.help))
    if command.help:
        command.help = reflow(command.help)
    for param in command.params:
        if isinstance(param, TyperArgument):
            param.__class__ = Argument  # same object, its display methods replaced
            if param.metavar is None:
                dots = "..." if param.nargs != 1 else ""
                param.metavar = f"{(param.name or 'value').upper()}{dots}"
        elif isinstance(param, TyperOption):
            if param.metavar is None:
                param.metavar = "" if param.is_flag else _metavar(param)
            if param.multiple and param.help and REPEATABLE not in param.help:
                param.help += REPEATABLE
        if getattr(param, "help", None):
            param.help = escape(param.help)


if TYPE_CHECKING:  # a mixin for both click classes below; typed as the command it extends
    _Mixin = TyperCommand
else:
    _Mixin = object


class _ReadableHelp(_Mixin):
    """Tidied help (see :func:`tidy`) and a bare ``--help`` (no metavar)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tidy(self)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class Command(_ReadableHelp, TyperCommand):
    """A command whose help reads well."""


class Group(_ReadableHelp, TyperGroup):
    """A group whose help reads well."""


class App(typer.Typer):
    """``typer.Typer`` with :class:`Command` and :class:`Group`, no completion, no pretty
    tracebacks (expected failures are one line; anything else is a bug worth its traceback)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        kwargs.setdefault("add_completion", False)
        kwargs.setdefault("pretty_exceptions_enable", False)
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(**kwargs)

    def command(
        self, name: str | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        kwargs.setdefault("cls", Command)
        return super().command(name, **kwargs)
