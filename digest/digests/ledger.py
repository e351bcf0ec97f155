"""The digest ledger: the one owner of a digest's life and of ``digest.status``.

::

    (due) ──record──▶ pending ──claim──▶ sending ──▶ sent
                 └──▶ empty                  │  └──▶ failed ──(retry due)──▶ claim again
                                             └── (claim stale: crashed) ──▶ claim again

Invariants (every entry point keeps them by committing where this module says):

1. **Recorded before sent.** A digest row and its ledger items are committed before its
   message is built; ``digest`` is unique on (subscriber, period) and ``digest_item`` on
   (subscriber, paper), so a paper reaches a subscriber at most once and a period has at
   most one digest, across reruns, crashes and concurrent runs.
2. **Claimed before sent.** :func:`claim` is a conditional ``UPDATE … WHERE ready``
   committed before the hand-over: two runs (two hosts, or a manual run beside the
   scheduler) never both send one digest.
3. **Finished as soon as the server answers.** :func:`finish` records ``sent`` or ``failed``
   right after the transport returns. A crash in between leaves the digest ``sending``; once
   its claim is stale (:data:`STALE_SENDING`) the next run re-sends it with the same
   Message-ID (derived from the digest key), so only messages in flight can arrive twice.
4. **Failures are retried, then given up.** A transient failure (4xx, dropped connection) is
   retried after an exponential :func:`backoff`, at most :data:`MAX_ATTEMPTS` times; a
   permanent one (5xx) is not retried and counts as a hard bounce of the address.

Functions here take a session and never commit: the entry point (``digest run``, the
scheduler's deliver job) commits at the points above.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, or_, select, update
from sqlmodel import Session, col

from digest.store.models import Digest, DigestItem, Subscriber
from digest.store.papers import dialect_insert

if TYPE_CHECKING:
    from digest.digests.selection import Selection

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # transient failures before a digest is given up
STALE_SENDING = timedelta(minutes=15)  # a "sending" digest older than this crashed mid-send


def digest_key(subscriber_id: int, period_key: str) -> str:
    """The stable key of a digest; its Message-ID derives from it."""
    return f"{subscriber_id}:{period_key}"


def backoff(attempts: int) -> timedelta:
    """Wait before retry number ``attempts``: 5 min, doubling, at most 6 hours."""
    return timedelta(minutes=min(5 * 2 ** max(attempts - 1, 0), 6 * 60))


def record_digest(
    session: Session, selection: Selection, *, now: datetime, keep_empty: bool = False
) -> Digest | None:
    """Write the digest row and its ledger items; None if the period already has a digest.

    An empty selection is recorded as ``empty`` (no email) unless ``keep_empty`` asks for a
    short "nothing new" note, which is then delivered like any digest.
    """
    due = selection.due
    subscriber = due.subscriber
    insert = dialect_insert(session)
    statement = (
        insert(Digest)
        .values(
            subscriber_id=subscriber.id,
            period_key=due.period.key,
            period_label=due.period.label,
            status="pending" if selection.picks or keep_empty else "empty",
            window_start=due.window_start,
            window_end=now,
            created_at=now,
            item_count=len(selection.picks),
            attempts=0,
        )
        .on_conflict_do_nothing(index_elements=["subscriber_id", "period_key"])
        .returning(col(Digest.id))
    )
    digest_id = session.execute(statement).scalar()
    if digest_id is None:  # another run got there first
        return None
    if selection.picks:
        rows = [
            {
                "digest_id": digest_id,
                "subscriber_id": subscriber.id,
                "paper_id": paper.id,
                "rank": rank,
                "score": round(float(pick.score), 6),
                "reason": pick.reason(),
                "matched": [m.interest for m in pick.matches],
            }
            for rank, (paper, pick) in enumerate(selection.picks, start=1)
        ]
        session.execute(
            insert(DigestItem)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["subscriber_id", "paper_id"])
        )
    return session.get(Digest, digest_id)


def record_digests(
    session: Session, selections: Sequence[Selection], *, now: datetime, keep_empty: bool = False
) -> list[tuple[Selection, Digest]]:
    """:func:`record_digest` for each selection; the (selection, digest) pairs written (not
    those another run recorded first)."""
    recorded = []
    for selection in selections:
        digest = record_digest(session, selection, now=now, keep_empty=keep_empty)
        if digest is not None:
            recorded.append((selection, digest))
            if selection.due.missed:
                log.info(
                    "catch-up: digest %s for %s (missed send time %s)",
                    digest.period_key,
                    selection.due.subscriber.email,
                    selection.due.period.send_at.isoformat(),
                )
    return recorded


def ready(now: datetime) -> ColumnElement[bool]:
    """Digests a run may (re)send: pending, failed and due for a retry, or stuck sending.

    While a digest is ``sending``, ``next_attempt_at`` is when its claim goes stale: a
    process that died mid-send leaves it there, and a later run takes it over.
    """
    retry_due = col(Digest.next_attempt_at) <= now
    return or_(
        col(Digest.status) == "pending",
        (col(Digest.status) == "failed") & retry_due,
        (col(Digest.status) == "sending")
        & or_(
            retry_due,
            col(Digest.next_attempt_at).is_(None) & (col(Digest.created_at) <= now - STALE_SENDING),
        ),
    )


def deliverable(session: Session, *, now: datetime, subscriber_id: int | None = None) -> list[int]:
    """Ids of the digests ready to (re)send at ``now``, oldest first."""
    statement = select(col(Digest.id)).where(ready(now))
    if subscriber_id is not None:
        statement = statement.where(col(Digest.subscriber_id) == subscriber_id)
    return list(session.execute(statement.order_by(col(Digest.id))).scalars())


def any_deliverable(session: Session, *, now: datetime) -> bool:
    """Whether some digest is ready to (re)send at ``now`` (one indexed probe)."""
    return session.execute(select(col(Digest.id)).where(ready(now)).limit(1)).first() is not None


def claim(session: Session, digest_id: int, *, now: datetime) -> bool:
    """Atomically mark one ready digest ``sending``; False if another run holds it."""
    result = session.execute(
        update(Digest)
        .where(col(Digest.id) == digest_id, ready(now))
        .values(
            status="sending",
            attempts=col(Digest.attempts) + 1,
            next_attempt_at=now + STALE_SENDING,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]  # a CursorResult


def refuse(session: Session, digest: Digest, reason: str) -> None:
    """A claimed digest that must not be sent (the subscriber left): failed, never retried."""
    digest.status, digest.next_attempt_at, digest.last_error = "failed", None, reason


def note_message(session: Session, digest: Digest, *, subject: str, message_id: str) -> None:
    """Keep the subject and Message-ID of the message about to be handed over."""
    digest.subject, digest.message_id = subject, message_id


def finish(
    session: Session,
    digest_id: int,
    status: str,
    *,
    error: str | None = None,
    retry_at: datetime | None = None,
    sent_at: datetime | None = None,
    bounce: bool = False,
) -> None:
    """Record how the hand-over ended: ``sent``, or ``failed`` (retry at ``retry_at``, or
    never); a hard ``bounce`` also counts against the address."""
    digest = session.get(Digest, digest_id)
    assert digest is not None
    digest.status, digest.last_error = status, error
    digest.next_attempt_at, digest.sent_at = retry_at, sent_at
    if bounce:
        subscriber = session.get(Subscriber, digest.subscriber_id)
        assert subscriber is not None
        subscriber.bounce_count += 1
        subscriber.last_bounce = error
        log.warning("hard bounce %d for subscriber %d", subscriber.bounce_count, subscriber.id)


def retry_at(attempts: int, now: datetime) -> datetime | None:
    """When a transient failure after ``attempts`` tries is retried; None: given up."""
    return now + backoff(attempts) if attempts < MAX_ATTEMPTS else None
