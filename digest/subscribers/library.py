"""Subscribers and their profiles: add, edit, pause, remove, export/import.

Addresses are validated (syntax only, no DNS) and normalized to lower case, so one person
is one row. Every function takes a session and never commits; a refused change raises a
:class:`~digest.errors.SubscriberError` before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, Protocol

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select
from sqlmodel import Session, col

from digest.config.calendar import WEEKDAYS
from digest.config.settings import Settings
from digest.errors import (
    DuplicateSubscriberError,
    InvalidEmailError,
    ProfileError,
    SubscriberError,
    UnknownSubscriberError,
)
from digest.ranking.base import Interest as RankInterest
from digest.ranking.base import Profile
from digest.ranking.profile_text import ProfileParts, build_profile, parse_entry, parse_interest
from digest.store.models import Interest, Subscriber
from digest.subscribers.feedback import Rating
from digest.subscribers.fields import BY_NAME, PROFILE_FIELDS, SCHEDULE_FIELDS, STATUSES
from digest.subscribers.links import links_for, new_token
from digest.subscribers.validation import validate_preferences


def normalize_email(text: str) -> str:
    """The address in its stored form, or InvalidEmailError with a one-line reason."""
    candidate = text.strip()
    if not candidate or any(ch in candidate for ch in "\r\n"):
        raise InvalidEmailError(f"invalid email address {text!r}")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmailError(f"invalid email address {candidate!r}: {exc}") from None
    return result.normalized.lower()


@dataclass(slots=True)
class ProfileSpec:
    """The editable profile of a subscriber, as given on the CLI or in a TOML file."""

    keywords: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)
    required: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)

    def validate(self) -> None:
        """Raise ProfileError (one line) if the profile cannot be ranked."""
        build_profile(
            self.keywords,
            self.excludes,
            required=self.required,
            authors=self.authors,
            categories=self.categories,
        )

    def by_kind(self) -> dict[str, list[str]]:
        """The lists keyed by the interest kind they are stored as."""
        return {str(p.kind): getattr(self, p.name) for p in PROFILE_FIELDS}

    def as_dict(self) -> dict[str, list[str]]:
        """The lists keyed by their preference name (files, exports, ``show --json``)."""
        return {p.name: list(getattr(self, p.name)) for p in PROFILE_FIELDS}


def _check_choice(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise SubscriberError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def get_subscriber(session: Session, email: str) -> Subscriber:
    """The subscriber with this address, or UnknownSubscriberError."""
    address = normalize_email(email)
    statement = select(Subscriber).where(col(Subscriber.email) == address)
    found: Subscriber | None = session.execute(statement).scalar()
    if found is None:
        raise UnknownSubscriberError(f"no subscriber {address}")
    return found


def find_by_token(session: Session, token: str) -> Subscriber | None:
    return session.execute(select(Subscriber).where(col(Subscriber.token) == token)).scalar()


def interests_of(session: Session, subscriber: Subscriber) -> list[Interest]:
    statement = (
        select(Interest)
        .where(col(Interest.subscriber_id) == subscriber.id)
        .order_by(col(Interest.kind), col(Interest.position))
    )
    return list(session.execute(statement).scalars())


class InterestLike(Protocol):
    """A stored interest row: the ORM object or a plain query row with these columns."""

    @property
    def kind(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def weight(self) -> float: ...
    @property
    def position(self) -> int: ...


class ProfileOwner(Protocol):
    """What a profile takes from its subscriber besides the interests."""

    @property
    def min_score(self) -> float | None: ...
    @property
    def popularity_weight(self) -> float: ...


def _typed(text: str, weight: float) -> str:
    """A stored interest as its profile list holds it (``text^weight`` unless weight 1)."""
    return text if weight == 1.0 else f"{text}^{weight:g}"


def spec_of(interests: Sequence[InterestLike]) -> ProfileSpec:
    """Rebuild the profile text lists from stored interest rows."""
    spec = ProfileSpec()
    lists = spec.by_kind()
    for row in sorted(interests, key=lambda r: (r.kind, r.position)):
        lists[row.kind].append(_typed(row.text, row.weight))
    return spec


InterestRow = tuple[str, str, float, int]  # kind, text, weight, position: a stored interest
_KIND_POSITION = itemgetter(0, 3)  # spec_of's order


class Profiles:
    """The ranking profiles of many subscribers, from their stored interest rows: each
    distinct entry is parsed once (a weekly run builds 100,000 profiles out of a few
    thousand distinct entries). ``build`` gives what :func:`profile_of` and
    :func:`spec_of` would, without writing each profile's text and parsing it again."""

    def __init__(self) -> None:
        self._entries: dict[InterestRow, tuple[int, RankInterest | str, str | None]] = {}

    def build(
        self, owner: ProfileOwner, rows: Sequence[InterestRow]
    ) -> tuple[Profile, tuple[str, ...]]:
        """The profile, and the keywords as the subscriber typed them (in their order)."""
        known = self._entries
        parts = ProfileParts()
        keywords: list[str] = []
        for row in sorted(rows, key=_KIND_POSITION):
            found = known.get(row)
            if found is None:
                kind, text, weight, _ = row
                typed = _typed(text, weight)
                entry = parse_entry(kind, typed)
                keyword = typed if kind == "keyword" else None
                found = known[row] = (ProfileParts.place(kind, entry), entry[1], keyword)
            place, value, keyword = found
            parts.add_at(place, value)
            if keyword is not None:
                keywords.append(keyword)
        profile = parts.profile(
            min_score=owner.min_score, popularity_weight=owner.popularity_weight
        )
        return profile, tuple(keywords)


def profile_of(
    subscriber: ProfileOwner, interests: Sequence[InterestLike], *, spec: ProfileSpec | None = None
) -> Profile:
    """The ranking profile of a subscriber (``spec``: the interests' lists, when known)."""
    spec = spec if spec is not None else spec_of(interests)
    return build_profile(
        spec.keywords,
        spec.excludes,
        required=spec.required,
        authors=spec.authors,
        categories=spec.categories,
        min_score=subscriber.min_score,
        popularity_weight=subscriber.popularity_weight,
    )


def _store_profile(session: Session, subscriber: Subscriber, spec: ProfileSpec) -> None:
    spec.validate()
    session.execute(delete(Interest).where(col(Interest.subscriber_id) == subscriber.id))
    seen: set[tuple[str, str]] = set()
    for kind, phrase, weight, position in _rows(spec):
        if phrase and (kind, phrase.casefold()) not in seen:  # one row per (kind, phrase)
            seen.add((kind, phrase.casefold()))
            session.add(_interest(subscriber, kind, phrase, weight, position))
    session.flush()


def _rows(spec: ProfileSpec) -> list[tuple[str, str, float, int]]:
    """(kind, phrase, weight, position) for every entry, keyword shorthands resolved."""
    rows: list[tuple[str, str, float, int]] = []
    for kind, texts in spec.by_kind().items():
        for position, text in enumerate(texts):
            stripped = text.strip()
            if kind == "keyword" and stripped[:1] in ("-", "+") and stripped[1:].strip():
                # "-phrase" / "+phrase" among keywords: an exclusion / a required phrase
                sign_kind = "exclude" if stripped[0] == "-" else "require"
                rows.append((sign_kind, stripped[1:].strip(), 1.0, position))
            elif kind == "keyword":
                interest = parse_interest(text)
                stored = {"author": "author", "category": "category"}.get(interest.kind, kind)
                rows.append((stored, interest.text, interest.weight, position))
            else:
                rows.append((kind, stripped, 1.0, position))
    return rows


def _interest(subscriber: Subscriber, kind: str, text: str, weight: float, pos: int) -> Interest:
    assert subscriber.id is not None
    return Interest(subscriber_id=subscriber.id, kind=kind, text=text, weight=weight, position=pos)


@dataclass(slots=True)
class SubscriberFields:
    """Scalar settings of a subscriber; None leaves a value unchanged (or takes the default).

    Checked when made, by the one preference model (:mod:`.validation`): a wrong type or
    value is a PreferenceError naming the field; ``weekday`` is kept as 0-6.
    """

    name: str | None = None
    frequency: str | None = None
    weekday: str | int | None = None
    hour: int | None = None
    timezone: str | None = None
    max_items: int | None = None
    min_score: float | None = None
    popularity_weight: float | None = None

    def __post_init__(self) -> None:
        given = {p.name: getattr(self, p.name) for p in SCHEDULE_FIELDS}
        for name, value in validate_preferences(given).items():
            setattr(self, name, value)

    def given(self) -> dict[str, Any]:
        """The values that were given (not None), by preference name."""
        return {
            p.name: getattr(self, p.name)
            for p in SCHEDULE_FIELDS
            if getattr(self, p.name) is not None
        }

    def apply(self, subscriber: Subscriber) -> None:
        for name, value in self.given().items():
            # a name goes into headers: no CR/LF, no runs of spaces
            setattr(
                subscriber, name, (" ".join(value.split()) or None) if name == "name" else value
            )


@dataclass(slots=True)
class PreferenceInput:
    """Preferences as an administrator gave them: ``None`` / empty means "not given".

    ``lists`` replace whole profile lists (by preference name); ``add`` and ``remove`` edit
    single entries of the stored ones.
    """

    fields: SubscriberFields = field(default_factory=SubscriberFields)
    lists: dict[str, list[str]] = field(default_factory=dict)
    add: dict[str, list[str]] = field(default_factory=dict)
    remove: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_values(
        cls,
        values: dict[str, Any],
        *,
        add: dict[str, list[str]] | None = None,
        remove: dict[str, list[str]] | None = None,
    ) -> PreferenceInput:
        """From ``{preference name: value or None}`` (lists: a list or None), checked by the
        preference model (PreferenceError names the field)."""
        checked = validate_preferences(values)
        lists = {p.name: list(checked[p.name]) for p in PROFILE_FIELDS if p.name in checked}
        scalars = {p.name: checked.get(p.name) for p in SCHEDULE_FIELDS}
        return cls(
            SubscriberFields(**scalars),
            lists,
            {k: v for k, v in (add or {}).items() if v},
            {k: v for k, v in (remove or {}).items() if v},
        )

    def profile(self) -> ProfileSpec:
        """The given lists as a whole profile (what ``add`` stores)."""
        return ProfileSpec(**self.lists)

    @property
    def edits_profile(self) -> bool:
        return bool(self.lists or self.add or self.remove)

    @property
    def is_empty(self) -> bool:
        """Nothing was given: an edit would change nothing."""
        return not (self.edits_profile or self.fields.given())


def add_subscriber(
    session: Session,
    *,
    email: str,
    profile: ProfileSpec,
    fields: SubscriberFields,
    settings: Settings,
    now: datetime,
    status: str = "active",
    origin: str = "cli",
    token: str | None = None,
) -> Subscriber:
    """Create a subscriber; admin-added ones are active (no double opt-in) unless told.

    ``token`` keeps an imported subscriber's links (the caller checks it is free)."""
    address = normalize_email(email)
    _check_choice(status, STATUSES, "status")
    if session.execute(select(col(Subscriber.id)).where(col(Subscriber.email) == address)).first():
        raise DuplicateSubscriberError(f"subscriber {address} already exists")
    profile.validate()
    subscriber = Subscriber(
        email=address,
        status=status,
        frequency=settings.default_frequency,
        weekday=settings.default_weekday,
        hour=settings.default_hour,
        timezone=settings.default_timezone,
        token=token or new_token(),
        origin=origin,
        created_at=now,
        updated_at=now,
        confirmed_at=now if status == "active" else None,
    )
    fields.apply(subscriber)
    session.add(subscriber)
    session.flush()
    _store_profile(session, subscriber, profile)
    return subscriber


def edit_subscriber(
    session: Session,
    email: str,
    *,
    fields: SubscriberFields,
    now: datetime,
    profile: ProfileSpec | None = None,
) -> Subscriber:
    """Change settings and, when ``profile`` is given, replace the whole profile."""
    subscriber = get_subscriber(session, email)
    fields.apply(subscriber)
    if profile is not None:
        _store_profile(session, subscriber, profile)
    subscriber.updated_at = now
    session.add(subscriber)
    return subscriber


def change_preferences(
    session: Session, email: str, preferences: PreferenceInput, *, now: datetime
) -> Subscriber:
    """Apply what an administrator gave: schedule values, replaced lists, single entries
    added or removed. One call, so a failing part changes nothing."""
    subscriber = get_subscriber(session, email)
    profile = None
    if preferences.edits_profile:
        profile = spec_of(interests_of(session, subscriber))
        for name, texts in preferences.lists.items():
            setattr(profile, name, list(texts))
        for name, texts in preferences.add.items():
            current = getattr(profile, name)
            for text in texts:  # the same phrase again replaces it (a new weight, say)
                same = [i for i, t in enumerate(current) if same_entry(t, text, name)]
                if same:
                    current[same[0]] = text
                else:
                    current.append(text)
        for name, texts in preferences.remove.items():
            current = getattr(profile, name)
            for text in texts:
                if not any(same_entry(t, text, name) for t in current):
                    kind = BY_NAME[name].kind
                    listed = ", ".join(repr(t) for t in current) or "none"
                    raise ProfileError(f"{kind} {text!r} is not in the profile ({listed})")
                current[:] = [t for t in current if not same_entry(t, text, name)]
    return edit_subscriber(session, email, fields=preferences.fields, now=now, profile=profile)


def entry_key(text: str, name: str) -> tuple[str, str]:
    """What identifies a profile entry: its kind and phrase, ignoring weight, case and
    spacing (``RLHF^2`` and ``rlhf`` are one keyword)."""
    if name == "keywords":
        try:
            interest = parse_interest(text)
        except ProfileError:
            return ("text", " ".join(text.split()).casefold())
        return (interest.kind, " ".join(interest.text.split()).casefold())
    return (name, " ".join(text.split()).casefold())


def same_entry(stored: str, given: str, name: str) -> bool:
    return entry_key(stored, name) == entry_key(given, name)


def set_status(session: Session, email: str, status: str, *, now: datetime) -> Subscriber:
    """Pause, resume (active), unsubscribe or mark pending."""
    subscriber = get_subscriber(session, email)
    _check_choice(status, STATUSES, "status")
    subscriber.status = status
    subscriber.updated_at = now
    if status == "unsubscribed":
        subscriber.unsubscribed_at = now
    elif status == "active":
        subscriber.confirmed_at = subscriber.confirmed_at or now
        subscriber.unsubscribed_at = None
        subscriber.bounce_count = 0  # an admin resume clears the bounce flag on purpose
    session.add(subscriber)
    return subscriber


def remove_subscriber(session: Session, email: str) -> None:
    """Delete a subscriber with their profile, digests and ledger."""
    subscriber = get_subscriber(session, email)
    session.delete(subscriber)
    session.flush()


def list_subscribers(session: Session, *, status: str | None = None) -> list[Subscriber]:
    statement = select(Subscriber).order_by(col(Subscriber.email))
    if status:
        statement = statement.where(
            col(Subscriber.status) == _check_choice(status, STATUSES, "status")
        )
    return list(session.execute(statement).scalars())


def describe(
    subscriber: Subscriber,
    interests: Sequence[Interest],
    settings: Settings,
    *,
    ratings: Sequence[Rating] | None = None,
) -> dict[str, Any]:
    """Everything about a subscriber as plain data (``show --json``, export); with
    ``ratings`` (:func:`~digest.subscribers.feedback.ratings_of`), those too."""
    spec = spec_of(interests)
    links = links_for(settings.base_url, subscriber.token)
    extra = {} if ratings is None else {"ratings": [r.as_dict() for r in ratings]}
    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        **spec.as_dict(),
        "frequency": subscriber.frequency,
        "weekday": WEEKDAYS[subscriber.weekday],
        "hour": subscriber.hour,
        "timezone": subscriber.timezone,
        "max_items": subscriber.max_items or settings.max_items,
        "min_score": subscriber.min_score,
        "popularity_weight": subscriber.popularity_weight,
        "bounce_count": subscriber.bounce_count,
        "created_at": subscriber.created_at.isoformat(),
        "feed_urls": {"atom": links.atom_url, "rss": links.rss_url, "json": links.json_url},
        "unsubscribe_url": links.unsubscribe_url,
        "manage_url": links.manage_url,
        **extra,
    }
