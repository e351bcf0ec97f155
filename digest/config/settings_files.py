"""Where settings come from and what to say when they are wrong.

- :func:`config_file`: the TOML file (``DIGEST_CONFIG``, else ``./digest.toml``).
- :func:`read_config_file`: its table, checked: malformed TOML and unknown keys are one-line
  :class:`~digest.errors.SettingsError` naming the file, the line or key and the fix (as
  profile files refuse unknown keys); a ``file`` source's relative path is taken from the
  file's directory, so the setting means the same whatever directory a command runs in.
- :func:`explain`: a settings ``ValidationError`` as one line naming the variable or the
  file and key, the problem and the value (never a secret's).
- :func:`origins`: where each setting's value came from (``digest config`` shows it).

This module imports nothing from the package but its errors and source definitions: the
settings import it.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from digest.config.sources import absolute_location
from digest.errors import SettingsError

ENV_PREFIX = "DIGEST_"
SECRET_WORDS = ("secret", "password", "token")


def config_file() -> Path | None:
    """The TOML settings file: ``DIGEST_CONFIG`` if set, else ``./digest.toml`` if present."""
    explicit = os.environ.get("DIGEST_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise SettingsError(
                f"DIGEST_CONFIG points to {path}, which is not a file: "
                "fix the path or unset DIGEST_CONFIG"
            )
        return path
    local = Path("digest.toml")
    return local if local.is_file() else None


def is_secret(name: str) -> bool:
    return any(word in name for word in SECRET_WORDS)


def _parse(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"{path}: not valid TOML: {exc}; fix that line (a missing quote or bracket?) "
            "or point DIGEST_CONFIG at another file"
        ) from None
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_config_file(path: Path, known: Collection[str]) -> dict[str, Any]:
    """The file's settings (keys as written), checked (see the module docstring)."""
    data = _parse(path)
    names = {name.lower() for name in known}
    for key in data:
        if key.lower() not in names:
            close = difflib.get_close_matches(key.lower(), sorted(names), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "digest config lists them all"
            raise SettingsError(f"{path}: unknown setting {key!r} ({hint})")
    sources = data.get("sources")
    if isinstance(sources, list):
        data["sources"] = [_anchor_source(table, path.parent) for table in sources]
    return data


def _anchor_source(table: Any, directory: Path) -> Any:
    """A ``file`` source's relative path, taken from the settings file's directory."""
    if not isinstance(table, dict) or table.get("kind") != "file":
        return table
    url = table.get("url")
    if not isinstance(url, str) or not url:
        return table
    return {**table, "url": absolute_location(url, directory)}


def _env_name(name: str) -> str:
    return f"{ENV_PREFIX}{name.upper()}"


def _env_set(name: str) -> bool:
    wanted = _env_name(name)
    return any(key.upper() == wanted for key in os.environ)


def _file_keys(path: Path | None) -> set[str]:
    if path is None:
        return set()
    try:
        return {key.lower() for key in tomllib.loads(path.read_text(encoding="utf-8"))}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return set()


def origins(
    names: Collection[str], overrides: Mapping[str, Any], path: Path | None
) -> dict[str, str]:
    """Per setting: ``option`` (given to the command), ``environment``, ``file`` or ``default``."""
    in_file = _file_keys(path)
    result = {}
    for name in names:
        if name in overrides:
            result[name] = "option"
        elif _env_set(name):
            result[name] = "environment"
        elif name in in_file:
            result[name] = "file"
        else:
            result[name] = "default"
    return result


def _where(name: str, rest: tuple[Any, ...], origin: str, path: Path | None) -> str:
    inner = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest)
    if origin == "environment":
        return f"{_env_name(name)}" + (f" ({name}{inner})" if inner else "")
    if origin == "file" and path is not None:
        return f"{path}: {name}{inner}"
    return f"{name}{inner}"


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def explain(
    exc: ValidationError, *, overrides: Mapping[str, Any], path: Path | None
) -> SettingsError:
    """The first error of a settings ``ValidationError`` as one line."""
    error = exc.errors()[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    loc = tuple(error["loc"])
    if not loc:  # a check across settings (production): the message names them
        return SettingsError(f"invalid settings: {message}")
    name = str(loc[0])
    origin = origins([name], overrides, path)[name]
    where = _where(name, loc[1:], origin, path)
    if error["type"] == "extra_forbidden":
        return SettingsError(f"{where}: unknown key; remove it (or check its spelling)")
    value = "" if is_secret(name) else f" (got {_shown(error.get('input'))})"
    fix = {
        "environment": f"; fix or unset {_env_name(name)}",
        "file": f"; fix it in {path}",
    }.get(origin, "")
    return SettingsError(f"{where}: {message}{value}{fix}")


_FIELD = re.compile(r'field "(\w+)"')


def explain_source_error(exc: Exception) -> SettingsError:
    """pydantic-settings' SettingsError (a variable that is not valid JSON) as one line."""
    match = _FIELD.search(str(exc))
    name = match.group(1) if match else "?"
    env = _env_name(name)
    raw = next((v for k, v in os.environ.items() if k.upper() == env), None)
    reason = "cannot be read"
    if raw is not None:
        try:
            json.loads(raw)
        except json.JSONDecodeError as decode:
            reason = f"not valid JSON ({decode.msg} at character {decode.pos})"
    example = ', e.g. \'[{"name": "hf", "kind": "hf_daily"}]\'' if name == "sources" else ""
    return SettingsError(f"{env}: {reason}; it must be JSON{example}; fix or unset {env}")
