"""Subscribers in files: JSON export/import (round-trip) and TOML profile directories (sync).

A profile file (``subscribers/*.toml``) describes one subscriber::

    email = "ada@example.org"
    name = "Ada Lovelace"
    frequency = "weekly"        # daily, weekly, off
    weekday = "monday"
    hour = 8
    timezone = "Europe/London"
    max_items = 10
    keywords = ["reinforcement learning^2", "offline RL", "robot learning"]
    exclude = ["medical imaging"]

Files are all read and validated before anything is written: one broken file is a one-line
error naming it, and the store stays as it was.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from digest.config.settings import Settings
from digest.errors import (
    DigestError,
    DuplicateSubscriberError,
    ProfileError,
    UnknownSubscriberError,
)
from digest.store.models import Subscriber
from digest.subscribers.feedback import parse_ratings, ratings_of, replace_ratings
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

log = logging.getLogger(__name__)
PROFILE_NAMES = {p.name for p in PROFILE_FIELDS}
# The export writes these lists under their singular file keys (what profile files use).
EXPORT_KEYS = {"excludes": "exclude", "required": "require"}
_IGNORED = {"feed_urls", "unsubscribe_url", "manage_url", "bounce_count", "created_at", "token"}
_IGNORED.add("ratings")  # read by import_subscribers itself (_read_ratings)


@dataclass(slots=True)
class Entry:
    """One subscriber as read from a file, validated."""

    email: str
    status: str | None
    profile: ProfileSpec
    fields: SubscriberFields
    origin_name: str


def parse_entry(data: Mapping[str, Any], where: str) -> Entry:
    """Validate one subscriber mapping; ProfileError names ``where`` and the bad key."""
    unknown = set(data) - set(FILE_KEYS) - _IGNORED - {"email", "status"}
    if unknown:
        raise ProfileError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    if "email" not in data or not isinstance(data["email"], str):
        raise ProfileError(f"{where}: missing 'email'")
    try:
        email = normalize_email(data["email"])
        spec = ProfileSpec()
        scalars: dict[str, Any] = {}
        for key, name in FILE_KEYS.items():
            if key not in data:
                continue
            if name not in PROFILE_NAMES:
                scalars[name] = data[key]
                continue
            value = data[key]
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ProfileError(f"{key!r} must be a list of strings")
            getattr(spec, name).extend(value)
        spec.validate()
        fields = SubscriberFields(**scalars)
        fields.apply(Subscriber(email=email, token="validation"))  # noqa: S106 - dry run
        status = data.get("status")
        if status is not None and status not in STATUSES:
            raise ProfileError(f"status must be one of {', '.join(STATUSES)}")
    except DigestError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    return Entry(email=email, status=status, profile=spec, fields=fields, origin_name=where)


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
    """Create or update subscribers so the store matches ``entries``."""
    result = SyncResult()
    for entry in entries:
        try:
            existing = get_subscriber(session, entry.email)
        except UnknownSubscriberError:
            existing = None
        if existing is None:
            add_subscriber(
                session,
                email=entry.email,
                profile=entry.profile,
                fields=entry.fields,
                settings=settings,
                now=now,
                status=entry.status or "active",
                origin=origin,
            )
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
        after = describe(existing, interests_of(session, existing), settings)
        (result.updated if before != after else result.unchanged).append(entry.email)
    return result


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


def export_subscribers(session: Session, *, settings: Settings) -> list[dict[str, Any]]:
    """All subscribers as plain data, the format ``import`` reads back."""
    rows = []
    for subscriber in list_subscribers(session):
        spec = spec_of(interests_of(session, subscriber))
        row: dict[str, Any] = {
            "email": subscriber.email,
            "name": subscriber.name,
            "status": subscriber.status,
        }
        row.update({p.name: getattr(subscriber, p.name) for p in SCHEDULE_FIELDS})
        row.update({EXPORT_KEYS.get(k, k): v for k, v in spec.as_dict().items()})
        if ratings := ratings_of(session, subscriber):  # the reader's feedback, by paper key
            row["ratings"] = [r.as_dict() for r in ratings]
        rows.append(row)
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def import_subscribers(
    session: Session,
    data: Any,
    *,
    settings: Settings,
    now: datetime,
    where: str,
    update: bool = False,
) -> SyncResult:
    """Import an ``export`` document (a JSON list); all entries validated first."""
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ProfileError(f"{where}: expected a JSON list of subscriber objects")
    entries = [parse_entry(item, f"{where}[{index}]") for index, item in enumerate(data)]
    emails = [entry.email for entry in entries]
    duplicates = {e for e in emails if emails.count(e) > 1}
    if duplicates:
        raise ProfileError(f"{where}: {sorted(duplicates)[0]} appears more than once")
    ratings = _read_ratings(data, entries, where)
    result = apply_entries(
        session, entries, settings=settings, now=now, origin="import", update=update
    )
    _store_ratings(session, ratings, where=where, now=now)
    return result


# The reader's ratings in exports: ``"ratings": [{"key", "vote", "rated_at"}, …]`` per
# subscriber (digest/subscribers/feedback.py); an entry without the key keeps its ratings.
Ratings = dict[str, list[tuple[str, int, datetime | None]]]


def _read_ratings(data: list[dict[str, Any]], entries: list[Entry], where: str) -> Ratings:
    """Every entry's ratings, checked before anything is written."""
    out: Ratings = {}
    for index, (item, entry) in enumerate(zip(data, entries, strict=True)):
        if "ratings" in item:
            try:
                out[entry.email] = parse_ratings(item["ratings"])
            except ProfileError as exc:
                raise ProfileError(f"{where}[{index}]: {exc}") from None
    return out


def _store_ratings(session: Session, ratings: Ratings, *, where: str, now: datetime) -> None:
    """Replace each listed subscriber's ratings; ratings of papers this store does not have
    are left out with a warning."""
    for email, rated in ratings.items():
        missing = replace_ratings(session, get_subscriber(session, email), rated, now=now)
        if missing:
            log.warning(
                "%s: %s: %d rated paper(s) not in this store, left out (e.g. %s)",
                where,
                email,
                len(missing),
                missing[0],
            )
