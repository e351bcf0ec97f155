"""One model of a subscriber's preference values, built from the declaration.

:data:`PreferenceModel` is generated from :data:`~digest.subscribers.fields.PREFERENCES`
(type, bounds, choices), so every surface checks values the same way: the CLI (typed by its
options), the web forms (text, converted first by :func:`from_text`), profile files and JSON
imports (strict: ``hour = "8"`` and ``hour = true`` are refused, as is ``keywords = "a, b"``:
lists are lists). A refused value is a :class:`~digest.errors.PreferenceError` naming the
field, what it must be and what it was.

The profile language inside the lists (weights, quotes, prefixes) is checked afterwards by
:meth:`~digest.subscribers.library.ProfileSpec.validate`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, create_model

from digest.config.calendar import WEEKDAYS, parse_weekday, validate_timezone
from digest.errors import ConfigError, PreferenceError
from digest.subscribers.fields import BY_NAME, FILE_KEYS, PREFERENCES, Preference

_WORDS = {
    "weekday": f"a weekday ({', '.join(WEEKDAYS)}) or 0-6 (0 = Monday)",
    "timezone": "an IANA time zone such as Europe/Berlin",
}


def expectation(p: Preference) -> str:
    """What a value of ``p`` must be, in words."""
    if p.is_list:
        return 'a list of texts, e.g. ["first", "second"]'
    if p.name in _WORDS or p.choices:
        return _WORDS.get(p.name) or "one of " + ", ".join(p.choices)
    if p.type in (int, float):
        what = "a whole number" if p.type is int else "a number"
        if p.low is not None and p.high is not None:
            what += f" from {p.low:g} to {p.high:g}"
        elif p.low is not None:
            what += f" of at least {p.low:g}"
        return what
    if p.high is not None:
        return f"text of at most {p.high:g} characters"
    return "text"


def _check_choice(p: Preference) -> Any:
    def check(value: str) -> str:
        if value not in p.choices:
            raise ValueError(f"must be {expectation(p)}, not {_shown(value)}")
        return value

    return check


def _check_weekday(value: str | int) -> int:
    try:
        return parse_weekday(value)
    except ConfigError:
        raise ValueError(
            f"must be {expectation(BY_NAME['weekday'])}, not {_shown(value)}"
        ) from None


def _check_timezone(value: str) -> str:
    try:
        return validate_timezone(value)
    except ConfigError:
        raise ValueError(
            f"must be {expectation(BY_NAME['timezone'])}, not {_shown(value)} (unknown time zone)"
        ) from None


def _annotation(p: Preference) -> Any:
    """The model's type of ``p``: its declared type, bounds and choices, optional."""
    checks = {"weekday": _check_weekday, "timezone": _check_timezone}
    if p.is_list:
        value: Any = list[str]
    elif p.name in checks or p.choices:
        base = str | int if p.name == "weekday" else str
        value = Annotated[base, AfterValidator(checks.get(p.name) or _check_choice(p))]
    elif p.type is int:
        value = Annotated[int, Field(ge=p.low, le=p.high)]
    elif p.type is float:
        value = Annotated[float, Field(ge=p.low, le=p.high, allow_inf_nan=False)]
    else:
        value = Annotated[str, Field(max_length=None if p.high is None else int(p.high))]
    return value | None


PreferenceModel = create_model(  # type: ignore[call-overload]  # fields built from the declaration
    "PreferenceModel",
    __config__=ConfigDict(strict=True, extra="forbid"),
    **{p.name: (_annotation(p), None) for p in PREFERENCES},
)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _hint(p: Preference, key: str, value: Any) -> str:
    if p.is_list and isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
        return f"; write {key} = {json.dumps(parts or [value], ensure_ascii=False)}"
    if p.type in (int, float) and isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return " (a number is written without quotes)"
    return ""


def _error(
    exc: ValidationError, keys: Mapping[str, str], data: Mapping[str, Any]
) -> PreferenceError:
    error = exc.errors()[0]
    name = str(error["loc"][0])
    p, key = BY_NAME[name], keys.get(name, name)
    value = data[name]
    if error["type"] == "value_error":  # our own checks say it whole
        problem = str(error["msg"]).removeprefix("Value error, ")
    else:
        problem = f"must be {expectation(p)}, not {_shown(value)}{_hint(p, key, value)}"
    return PreferenceError(name, problem, key=key)


def validate_preferences(values: Mapping[str, Any]) -> dict[str, Any]:
    """The given preferences (keyed by name or a file alias) checked and normalised, by
    preference name (``weekday`` as 0-6). None and absent mean "not given" and are left out.
    """
    data: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for key, value in values.items():
        name = FILE_KEYS.get(key)
        if name is None:
            raise PreferenceError(key, "not a preference")
        if value is None:
            continue
        if name in data:
            raise PreferenceError(name, f"given twice (as {keys[name]} and {key})", key=key)
        data[name], keys[name] = value, key
    try:
        model = PreferenceModel.model_validate(data)
    except ValidationError as exc:
        raise _error(exc, keys, data) from None
    return {name: getattr(model, name) for name in data}


def from_text(p: Preference, text: str) -> Any:
    """A form's text as the value the model expects: numbers parsed, blank is None; text
    that is not a number is passed on for the model to refuse in its words."""
    stripped = text.strip()
    if not stripped:
        return None
    if p.type is int and stripped.lstrip("-").isdigit():
        return int(stripped)
    if p.type is float:
        try:
            number = float(stripped)
        except ValueError:
            return stripped
        return number if math.isfinite(number) else stripped
    return stripped
