"""Web form input → the subscriber service's types, checked before anything is written.

Everything arrives as text: each field is turned into the value the one preference model
expects (:func:`~digest.subscribers.validation.from_text`) and checked by it, as the CLI and
profile files are. A bad value raises a one-line :class:`~digest.errors.DigestError` naming
the field as the form labels it ("Hour must be a whole number from 0 to 23, not 25") that the
page shows next to the form; nothing is stored until the whole form is valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from digest.config.calendar import WEEKDAYS
from digest.config.settings import Settings
from digest.errors import PreferenceError, ProfileError, SubscriberError
from digest.ranking.profile_text import parse_interest
from digest.store.models import Interest, Subscriber
from digest.subscribers.fields import BY_NAME, FREQUENCIES, SIGNUP_FIELDS, WEB_FIELDS
from digest.subscribers.library import ProfileSpec, SubscriberFields, normalize_email
from digest.subscribers.validation import from_text

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


FormValues = Mapping[str, str]


async def read_form(request: Request) -> dict[str, str]:
    """The posted form's text fields (a dependency: the page routes are synchronous)."""
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


PostedForm = Annotated[dict[str, str], Depends(read_form)]


def form_defaults(settings: Settings) -> dict[str, str]:
    """The forms' values before anything is typed: the service's ``default_*`` settings."""
    special = {"weekday": WEEKDAYS[settings.default_weekday], "max_items": settings.max_items}
    return {"email": ""} | {
        name: str(special.get(name, getattr(settings, f"default_{name}", "")))
        for name in WEB_FIELDS
    }


def form_values(
    subscriber: Subscriber, interests: list[Interest], *, max_items: int
) -> dict[str, str]:
    """The manage form's values: what the subscriber has now."""
    keywords, excludes, _ = profile_texts(interests)
    special = {
        "keywords": keywords,
        "excludes": excludes,
        "weekday": WEEKDAYS[subscriber.weekday],
        "max_items": str(subscriber.max_items or max_items),
    }
    return {
        name: special[name] if name in special else str(getattr(subscriber, name))
        for name in WEB_FIELDS
    }


def posted(form: FormValues, names: tuple[str, ...], defaults: FormValues) -> dict[str, str]:
    """The posted values of the fields ``names``, a missing one taking its default."""
    return {name: form.get(name, defaults.get(name, "")) for name in names}


def parse_preferences(
    values: FormValues,
    *,
    required: list[str] | None = None,
    frequencies: tuple[str, ...] = FREQUENCIES,
) -> Preferences:
    """Check a profile form (fields :data:`WEB_FIELDS`); ``required`` phrases (set by an
    admin) are carried over."""
    frequency = values.get("frequency", "")
    if frequency not in frequencies:
        raise SubscriberError(f"frequency must be one of {', '.join(frequencies)}")
    profile = ProfileSpec(
        keywords=_unique_interests(interest_lines(values.get("keywords", ""), "Interests")),
        excludes=interest_lines(values.get("excludes", ""), "Exclusions"),
        required=list(required or []),
    )
    profile.validate()
    scalars = {
        name: from_text(BY_NAME[name], values.get(name, ""))
        for name in WEB_FIELDS
        if not BY_NAME[name].is_list
    }
    if scalars.get("hour") is None:
        raise SubscriberError("Hour must be a whole number from 0 to 23")
    scalars["timezone"] = scalars.get("timezone") or "UTC"
    try:
        fields = SubscriberFields(**scalars)
    except PreferenceError as exc:  # the form's own words for the field
        raise SubscriberError(f"{BY_NAME[exc.field].title} {exc.problem}") from None
    return Preferences(profile=profile, fields=fields)


def parse_signup(values: FormValues) -> Signup:
    """Check the subscribe form (address syntax only: nothing is looked up here)."""
    email = values.get("email", "")
    if len(email) > MAX_EMAIL_CHARS:
        raise SubscriberError("the email address is too long")
    address = normalize_email(email)
    signup_values = {name: values.get(name, "") for name in SIGNUP_FIELDS}
    preferences = parse_preferences(signup_values, frequencies=SIGNUP_FREQUENCIES)
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
