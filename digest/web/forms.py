"""Web form input → the subscriber service's types, checked before anything is written.

Everything arrives as text. A bad value raises a one-line :class:`~digest.errors.DigestError`
(``SubscriberError``, ``ProfileError`` or ``ConfigError``) that the page shows next to the
form; nothing is stored until the whole form is valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.errors import ProfileError, SubscriberError
from digest.ranking.profile_text import parse_interest
from digest.store.models import Interest, Subscriber
from digest.subscribers.fields import FREQUENCIES
from digest.subscribers.library import ProfileSpec, SubscriberFields, normalize_email

MAX_LINES = 50  # interests per list: more is a paste accident or abuse
MAX_LINE_CHARS = 200
MAX_EMAIL_CHARS = 320
SIGNUP_FREQUENCIES = ("weekly", "daily")


@dataclass(frozen=True, slots=True)
class Preferences:
    """A validated profile and schedule from a form."""

    profile: ProfileSpec
    fields: SubscriberFields


@dataclass(frozen=True, slots=True)
class Signup:
    """A validated subscribe form."""

    email: str
    preferences: Preferences


def interest_lines(text: str, what: str) -> list[str]:
    """One interest per non-empty line, trimmed, duplicates (ignoring case) dropped."""
    lines: list[str] = []
    seen: set[str] = set()
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line or line.casefold() in seen:
            continue
        if len(line) > MAX_LINE_CHARS:
            raise ProfileError(f"{what}: lines are limited to {MAX_LINE_CHARS} characters")
        seen.add(line.casefold())
        lines.append(line)
    if len(lines) > MAX_LINES:
        raise ProfileError(f"{what}: at most {MAX_LINES} lines")
    return lines


def _unique_interests(lines: list[str]) -> list[str]:
    # "author:Ada" and "author: Ada" are one interest; the store refuses a second row.
    kept: list[str] = []
    seen: set[tuple[str, str]] = set()
    for line in lines:
        interest = parse_interest(line)  # ProfileError quotes a bad line
        key = (interest.kind, interest.text.casefold())
        if key not in seen:
            seen.add(key)
            kept.append(line)
    return kept


def _integer(value: str, what: str, low: int, high: int) -> int:
    text = value.strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise SubscriberError(f"{what} must be a whole number from {low} to {high}")
    return int(text)


def parse_preferences(
    *,
    keywords: str,
    excludes: str,
    frequency: str,
    weekday: str,
    hour: str,
    timezone: str,
    max_items: str = "",
    required: list[str] | None = None,
    frequencies: tuple[str, ...] = FREQUENCIES,
) -> Preferences:
    """Check a profile form; ``required`` phrases (set by an admin) are carried over."""
    if frequency not in frequencies:
        raise SubscriberError(f"frequency must be one of {', '.join(frequencies)}")
    profile = ProfileSpec(
        keywords=_unique_interests(interest_lines(keywords, "Interests")),
        excludes=interest_lines(excludes, "Exclusions"),
        required=list(required or []),
    )
    profile.validate()
    fields = SubscriberFields(
        frequency=frequency,
        weekday=weekday.strip() or None,
        hour=_integer(hour, "Hour", 0, 23),
        timezone=timezone.strip() or "UTC",
        max_items=_integer(max_items, "Papers per digest", 1, 100) if max_items.strip() else None,
    )
    # Apply to a scratch row: weekday and time zone errors surface now, not halfway through
    # an update.
    fields.apply(Subscriber(email="check@example.invalid", token=""))
    return Preferences(profile=profile, fields=fields)


def parse_signup(
    *,
    email: str,
    keywords: str,
    excludes: str,
    frequency: str,
    weekday: str,
    hour: str,
    timezone: str,
) -> Signup:
    """Check the subscribe form (address syntax only: nothing is looked up here)."""
    if len(email) > MAX_EMAIL_CHARS:
        raise SubscriberError("the email address is too long")
    address = normalize_email(email)
    preferences = parse_preferences(
        keywords=keywords,
        excludes=excludes,
        frequency=frequency,
        weekday=weekday,
        hour=hour,
        timezone=timezone,
        frequencies=SIGNUP_FREQUENCIES,
    )
    return Signup(email=address, preferences=preferences)


def _display(interest: Interest) -> str:
    text = interest.text
    # Quote what would otherwise read back as a prefix or a weight.
    if interest.kind in ("keyword", "exclude") and ("^" in text or ":" in text):
        text = f'"{text}"'
    prefix = {"author": "author:", "category": "cat:"}.get(interest.kind, "")
    weight = "" if interest.weight == 1.0 else f"^{interest.weight:g}"
    return f"{prefix}{text}{weight}"


def profile_texts(interests: list[Interest]) -> tuple[str, str, list[str]]:
    """(keywords textarea, exclusions textarea, required phrases) of stored interests."""
    ordered = sorted(interests, key=lambda row: (row.kind != "keyword", row.kind, row.position))
    keywords = [_display(row) for row in ordered if row.kind in ("keyword", "author", "category")]
    excludes = [row.text for row in ordered if row.kind == "exclude"]
    required = [row.text for row in ordered if row.kind == "require"]
    return "\n".join(keywords), "\n".join(excludes), required
