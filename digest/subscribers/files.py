"""Subscribers in files: TOML profile directories (sync) and the entries of an export.

A profile file (``subscribers/*.toml``) describes one subscriber::

    email = "ada@example.org"
    name = "Ada Lovelace"
    frequency = "weekly"        # daily, weekly, off
    weekday = "monday"
    hour = 8
    timezone = "Europe/London"
    max_items = 10
    keywords = ["reinforcement learning^2", "offline RL", "robot learning"]
    excludes = ["medical imaging"]

Keys are the preference names of :mod:`.fields` (``show --json`` and the export use the same;
the older ``exclude`` and ``require`` are still read). Values are checked strictly by the one
preference model (:mod:`.validation`): ``hour = "8"`` is refused, as is a bare string where a
list belongs. Files are all read and validated before anything is written: one broken file
is a one-line error naming it and the key, and the store stays as it was.

The export document around these entries (tokens, history, its version) is
:mod:`digest.digests.transfer`.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from sqlalchemy import select
from sqlmodel import Session, col

from digest.config.settings import Settings
from digest.errors import (
    DigestError,
    DuplicateSubscriberError,
    ProfileError,
    UnknownSubscriberError,
)
from digest.store.models import Subscriber
from digest.subscribers.fields import FILE_KEYS, PROFILE_FIELDS, SCHEDULE_FIELDS, STATUSES
from digest.subscribers.library import (
    ProfileSpec,
    SubscriberFields,
    add_subscriber,
    describe,
    edit_subscriber,
    get_subscriber,
    interests_of,
    list_subscribers,
    normalize_email,
    remove_subscriber,
    spec_of,
)
from digest.subscribers.validation import validate_preferences

log = logging.getLogger(__name__)
PROFILE_NAMES = {p.name for p in PROFILE_FIELDS}
# What ``show --json`` adds that an import ignores (its output may be fed back).
_IGNORED = {"feed_urls", "unsubscribe_url", "manage_url"}
ACCOUNT_KEYS = ("token", "created_at", "confirmed_at", "unsubscribed_at", "bounce_count")


class Account(BaseModel):
    """What an export keeps of a subscriber's account besides preferences."""

    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{16,64}$")
    created_at: datetime | None = None
    confirmed_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    bounce_count: StrictInt | None = Field(None, ge=0)


@dataclass(slots=True)
class Entry:
    """One subscriber as read from a file, validated."""

    email: str
    status: str | None
    profile: ProfileSpec
    fields: SubscriberFields
    origin_name: str
    account: Account = field(default_factory=Account)
    given_lists: frozenset[str] = frozenset()  # the lists the entry names (others: empty)


def _account(data: Mapping[str, Any]) -> Account:
    given = {key: data[key] for key in ACCOUNT_KEYS if key in data}
    try:
        return Account.model_validate(given)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0])
        problem = {
            "token": "must be a subscriber token (16-64 letters, digits, - or _)",
            "bounce_count": "must be a whole number of at least 0",
        }.get(key, "must be an ISO 8601 time, e.g. 2026-11-23T09:00:00+00:00")
        raise ProfileError(f"{key}: {problem}, not {error.get('input')!r}") from None


def parse_entry(
    data: Mapping[str, Any], where: str, *, extra: Iterable[str] = (), account: bool = False
) -> Entry:
    """Validate one subscriber mapping; ProfileError names ``where`` and the bad key.

    ``account`` accepts the export's account keys (token, dates, bounces); ``extra`` names
    keys the caller reads itself.
    """
    allowed = set(FILE_KEYS) | _IGNORED | {"email", "status"} | set(extra)
    allowed |= set(ACCOUNT_KEYS) if account else set()
    unknown = set(data) - allowed
    if unknown:
        raise ProfileError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    if "email" not in data or not isinstance(data["email"], str):
        raise ProfileError(f"{where}: missing 'email'")
    try:
        email = normalize_email(data["email"])
        checked = validate_preferences({k: v for k, v in data.items() if k in FILE_KEYS})
        spec = ProfileSpec(**{k: list(v) for k, v in checked.items() if k in PROFILE_NAMES})
        spec.validate()
        fields = SubscriberFields(**{k: v for k, v in checked.items() if k not in PROFILE_NAMES})
        status = data.get("status")
        if status is not None and status not in STATUSES:
            raise ProfileError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        details = _account(data) if account else Account()
    except DigestError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    return Entry(
        email=email,
        status=status,
        profile=spec,
        fields=fields,
        origin_name=where,
        account=details,
        given_lists=frozenset(k for k in checked if k in PROFILE_NAMES),
    )


def read_profile_dir(directory: Path) -> list[Entry]:
    """Every ``*.toml`` profile in ``directory`` (sorted), validated; duplicates refused."""
    if not directory.is_dir():
        raise ProfileError(f"{directory}: not a directory")
    entries: list[Entry] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"{path}: {exc}") from None
        except UnicodeDecodeError:
            raise ProfileError(f"{path}: not UTF-8 text") from None
        entry = parse_entry(data, str(path))
        if entry.email in seen:
            raise ProfileError(f"{path}: {entry.email} is also defined in {seen[entry.email]}")
        seen[entry.email] = str(path)
        entries.append(entry)
    return entries


@dataclass(slots=True)
class SyncResult:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def summary(self, *, removals: bool = False) -> str:
        """``added 2, updated 1, unchanged 3`` (and ``removed N`` where removing can happen)."""
        counts = self.as_dict()
        if not removals:
            del counts["removed"]
        return ", ".join(f"{what} {len(emails)}" for what, emails in counts.items())

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
        }


def apply_entries(
    session: Session,
    entries: Iterable[Entry],
    *,
    settings: Settings,
    now: datetime,
    origin: str,
    update: bool = True,
) -> SyncResult:
    """Create or update subscribers so the store matches ``entries`` (an entry's account
    keys, when it has them, too: its token keeps mailed links working)."""
    result = SyncResult()
    for entry in entries:
        try:
            existing = get_subscriber(session, entry.email)
        except UnknownSubscriberError:
            existing = None
        _check_token(session, entry, existing)
        if existing is None:
            subscriber = add_subscriber(
                session,
                email=entry.email,
                profile=entry.profile,
                fields=entry.fields,
                settings=settings,
                now=now,
                status=entry.status or "active",
                origin=origin,
                token=entry.account.token,
            )
            _apply_account(subscriber, entry.account)
            result.added.append(entry.email)
            continue
        if not update:
            raise DuplicateSubscriberError(
                f"{entry.origin_name}: subscriber {entry.email} already exists (use --update)"
            )
        before = describe(existing, interests_of(session, existing), settings)
        edit_subscriber(session, entry.email, fields=entry.fields, profile=entry.profile, now=now)
        if entry.status and entry.status != existing.status:
            existing.status = entry.status
        _apply_account(existing, entry.account)
        after = describe(existing, interests_of(session, existing), settings)
        (result.updated if before != after else result.unchanged).append(entry.email)
    return result


def _check_token(session: Session, entry: Entry, existing: Subscriber | None) -> None:
    token = entry.account.token
    if token is None:
        return
    holder = session.execute(
        select(col(Subscriber.email)).where(col(Subscriber.token) == token)
    ).scalar()
    if holder is not None and (existing is None or holder != existing.email):
        raise ProfileError(f"{entry.origin_name}: its token already belongs to subscriber {holder}")


def _apply_account(subscriber: Subscriber, account: Account) -> None:
    if account.token is not None:
        subscriber.token = account.token
    for name in ("created_at", "confirmed_at", "unsubscribed_at", "bounce_count"):
        value = getattr(account, name)
        if value is not None:
            setattr(subscriber, name, value)
    session = Session.object_session(subscriber)
    if session is not None:
        session.flush()


def sync_directory(
    session: Session, directory: Path, *, settings: Settings, now: datetime, prune: bool = False
) -> SyncResult:
    """Make the store match the TOML profiles; remove others only with ``prune``."""
    entries = read_profile_dir(directory)
    result = apply_entries(session, entries, settings=settings, now=now, origin="sync")
    if prune:
        wanted = {entry.email for entry in entries}
        for subscriber in list_subscribers(session):
            if subscriber.email not in wanted and subscriber.origin == "sync":
                remove_subscriber(session, subscriber.email)
                result.removed.append(subscriber.email)
    return result


def export_entry(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """One subscriber as an export entry: the keys of ``show --json`` for the preferences
    (``weekday`` by name), the status and the account (token, dates, bounces). Unset
    values are left out."""
    from digest.config.calendar import WEEKDAYS  # noqa: PLC0415 - only the export needs it

    spec = spec_of(interests_of(session, subscriber))
    row: dict[str, Any] = {"email": subscriber.email, "status": subscriber.status}
    row.update({p.name: getattr(subscriber, p.name) for p in SCHEDULE_FIELDS})
    row["weekday"] = WEEKDAYS[subscriber.weekday]
    row.update(spec.as_dict())
    row.update(
        token=subscriber.token,
        created_at=subscriber.created_at.isoformat(),
        confirmed_at=subscriber.confirmed_at.isoformat() if subscriber.confirmed_at else None,
        unsubscribed_at=(
            subscriber.unsubscribed_at.isoformat() if subscriber.unsubscribed_at else None
        ),
        bounce_count=subscriber.bounce_count,
    )
    return {k: v for k, v in row.items() if v is not None}


def read_entries(
    items: Any, where: str, *, extra: Iterable[str] = (), account: bool = True
) -> list[Entry]:
    """A JSON list of subscriber entries, every one validated; an address twice is refused."""
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ProfileError(f"{where}: expected a JSON list of subscriber objects")
    entries = [
        parse_entry(item, f"{where}[{index}]", extra=extra, account=account)
        for index, item in enumerate(items)
    ]
    emails = [entry.email for entry in entries]
    duplicates = {e for e in emails if emails.count(e) > 1}
    if duplicates:
        raise ProfileError(f"{where}: {sorted(duplicates)[0]} appears more than once")
    tokens = [entry.account.token for entry in entries if entry.account.token]
    if len(tokens) != len(set(tokens)):
        raise ProfileError(f"{where}: two subscribers have the same token")
    return entries
