"""The subscriber service behind the web pages. Functions take a session and never commit.

Status rules of the self-service pages:

- a web signup creates a ``pending`` subscriber (double opt-in); resubmitting the form for a
  pending or unsubscribed address replaces its profile and makes it pending again, while an
  active or paused subscriber is left untouched (the caller mails them their manage link);
- a pending subscriber's token has never been shown to anyone, so token pages treat it as
  unknown;
- pause, resume and unsubscribe by token keep the hard-bounce count (only an admin's
  ``digest subscribers resume`` clears it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlmodel import Session, col

from digest.config.settings import Settings
from digest.store.models import Digest, Subscriber
from digest.subscribers.library import add_subscriber, edit_subscriber, find_by_token
from digest.subscribers.links import token_fingerprint
from digest.web.forms import Preferences, Signup
from digest.web.security import ConfirmClaim, plausible_token, tokens_equal

Outcome = Literal["confirm", "already"]
RECENT_DIGESTS = 10


def subscriber_for_token(session: Session, token: str) -> Subscriber | None:
    """The confirmed subscriber owning ``token`` (any status but pending), else None."""
    if not plausible_token(token):
        return None
    found = find_by_token(session, token)
    # The index lookup finds the row; the final check is constant-time (see README).
    if found is None or not tokens_equal(token, found.token) or found.status == "pending":
        return None
    return found


def _replace_preferences(
    session: Session, subscriber: Subscriber, preferences: Preferences, now: datetime
) -> None:
    edit_subscriber(
        session,
        subscriber.email,
        fields=preferences.fields,
        profile=preferences.profile,
        now=now,
    )


def request_subscription(
    session: Session, signup: Signup, *, settings: Settings, now: datetime
) -> tuple[Outcome, Subscriber]:
    """Record a signup. ``confirm``: mail a confirmation link; ``already``: a manage link."""
    existing = session.execute(
        select(Subscriber).where(col(Subscriber.email) == signup.email)
    ).scalar()
    if existing is None:
        created = add_subscriber(
            session,
            email=signup.email,
            profile=signup.preferences.profile,
            fields=signup.preferences.fields,
            settings=settings,
            now=now,
            status="pending",
            origin="web",
        )
        return "confirm", created
    if existing.status in ("active", "paused"):
        return "already", existing  # an unconfirmed form never edits a confirmed profile
    _replace_preferences(session, existing, signup.preferences, now)
    existing.status = "pending"
    return "confirm", existing


def confirm_subscription(
    session: Session, claim: ConfirmClaim, *, now: datetime
) -> Subscriber | None:
    """Activate the pending subscriber a valid link names; None if the link no longer fits.

    Confirming twice is harmless (the second time changes nothing); a link from before an
    unsubscribe does not resubscribe anyone.
    """
    subscriber = session.get(Subscriber, claim.subscriber_id)
    if subscriber is None or not tokens_equal(
        claim.fingerprint, token_fingerprint(subscriber.token)
    ):
        return None
    if subscriber.status == "pending":
        subscriber.status = "active"
        subscriber.confirmed_at = now
        subscriber.unsubscribed_at = None
        subscriber.updated_at = now
        session.add(subscriber)
        return subscriber
    return subscriber if subscriber.status in ("active", "paused") else None


def update_preferences(
    session: Session, subscriber: Subscriber, preferences: Preferences, *, now: datetime
) -> None:
    """Replace profile and schedule from the manage form (already validated)."""
    _replace_preferences(session, subscriber, preferences, now)


def set_own_status(
    session: Session,
    subscriber: Subscriber,
    status: Literal["active", "paused", "unsubscribed"],
    *,
    now: datetime,
) -> None:
    """Pause, resume or unsubscribe by token; idempotent, bounce count kept."""
    if subscriber.status == status:
        return
    subscriber.status = status
    subscriber.updated_at = now
    subscriber.unsubscribed_at = now if status == "unsubscribed" else None
    session.add(subscriber)


def recent_digests(session: Session, subscriber: Subscriber) -> Sequence[Digest]:
    """The subscriber's last delivered (or empty) digests, newest first."""
    statement = (
        select(Digest)
        .where(
            col(Digest.subscriber_id) == subscriber.id,
            col(Digest.status).in_(("sent", "empty")),
        )
        .order_by(col(Digest.created_at).desc(), col(Digest.id).desc())
        .limit(RECENT_DIGESTS)
    )
    return list(session.execute(statement).scalars())
