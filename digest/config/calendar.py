"""The calendar vocabulary of settings and profiles: weekdays, frequencies, time zones.

Ground floor: the settings validate their defaults with it, the subscriber library and the
digest periods build on it.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from digest.errors import ConfigError

Frequency = Literal["daily", "weekly", "off"]
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def validate_timezone(name: str) -> str:
    """Return the IANA name if valid, else raise ConfigError."""
    if name not in available_timezones() and name != "UTC":
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}") from None
    return name


def parse_weekday(value: str | int) -> int:
    """0-6, or a weekday name or 3-letter abbreviation, to 0 (Monday) … 6 (Sunday)."""
    if isinstance(value, int) or value.strip().isdigit():
        number = int(value)
        if 0 <= number <= 6:
            return number
        raise ConfigError(f"weekday must be 0-6 (0 = Monday), not {value}")
    text = value.strip().lower()
    for index, name in enumerate(WEEKDAYS):
        if text in (name, name[:3]):
            return index
    raise ConfigError(f"unknown weekday {value!r}")
