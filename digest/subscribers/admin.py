"""The administrator's operations on subscribers, each one call that owns its transaction.

``digest subscribers …`` commands are one call each into this module (parse options, call,
print), and so is anything else that manages subscribers from Python (``export`` and
``import`` carry history too: :mod:`digest.digests.transfer`). A refused change raises a
:class:`~digest.errors.SubscriberError` and writes nothing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from digest.config.settings import Settings
from digest.store import db
from digest.subscribers.feedback import paper_by_key, rate, ratings_of
from digest.subscribers.files import SyncResult, sync_directory
from digest.subscribers.library import (
    PreferenceInput,
    add_subscriber,
    change_preferences,
    describe,
    get_subscriber,
    interests_of,
    list_subscribers,
    remove_subscriber,
    set_status,
)


def add(
    settings: Settings, email: str, preferences: PreferenceInput, *, now: datetime
) -> dict[str, Any]:
    """Add an active subscriber; what ``show`` says about them."""
    with db.transaction(settings) as session:
        subscriber = add_subscriber(
            session,
            email=email,
            profile=preferences.profile(),
            fields=preferences.fields,
            settings=settings,
            now=now,
        )
        return describe(subscriber, interests_of(session, subscriber), settings)


def edit(
    settings: Settings, email: str, preferences: PreferenceInput, *, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Change a subscriber's preferences; what ``show`` says about them before and after."""
    with db.transaction(settings) as session:
        subscriber = get_subscriber(session, email)
        before = describe(subscriber, interests_of(session, subscriber), settings)
        subscriber = change_preferences(session, email, preferences, now=now)
        return before, describe(subscriber, interests_of(session, subscriber), settings)


def show(settings: Settings, email: str) -> dict[str, Any]:
    """Everything about one subscriber as plain data, their ratings included."""
    with db.reading(settings) as session:
        subscriber = get_subscriber(session, email)
        ratings = ratings_of(session, subscriber)
        return describe(subscriber, interests_of(session, subscriber), settings, ratings=ratings)


def feedback(
    settings: Settings, email: str, key: str, vote: int, *, now: datetime
) -> dict[str, Any]:
    """Rate a paper for a subscriber (+1 more like this, -1 less like this, 0 clear it);
    what was recorded."""
    with db.transaction(settings) as session:
        subscriber = get_subscriber(session, email)
        paper = paper_by_key(session, key)
        rate(session, subscriber, paper, vote, now=now)
        return {"email": subscriber.email, "key": paper.key, "title": paper.title, "vote": vote}


def listing(settings: Settings, *, status: str | None = None) -> list[dict[str, Any]]:
    """Every subscriber (or those with ``status``), by address."""
    with db.reading(settings) as session:
        return [
            describe(s, interests_of(session, s), settings)
            for s in list_subscribers(session, status=status)
        ]


def change_status(settings: Settings, email: str, status: str, *, now: datetime) -> tuple[str, str]:
    """Pause or resume; (stored address, the status it has now)."""
    with db.transaction(settings) as session:
        subscriber = set_status(session, email, status, now=now)
        return subscriber.email, subscriber.status


def remove(settings: Settings, email: str) -> None:
    """Delete a subscriber with their profile, digests and ledger."""
    with db.transaction(settings) as session:
        remove_subscriber(session, email)


def sync(settings: Settings, directory: Path, *, prune: bool, now: datetime) -> SyncResult:
    """Make the store match a directory of TOML profile files."""
    with db.transaction(settings) as session:
        return sync_directory(session, directory, settings=settings, now=now, prune=prune)
