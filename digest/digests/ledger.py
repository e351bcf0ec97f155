"""The digest ledger: the one owner of a digest's life and of ``digest.status``.

::

    (due) ──record──▶ pending ──claim──▶ sending ──▶ sent
                 └──▶ empty                  │  ├──▶ failed ──(retry due)──▶ claim again
                                             │  └──▶ released (never handed over) ──▶ pending
                                             └── (claimant dead) ──▶ claim again

Invariants (every entry point keeps them by committing where this module says):

1. **Recorded before sent.** Digest rows and their ledger items are committed before any
   message is built (:func:`record_digests`, in bulk), and on disk before the run sends
   any (its SQLite commit checkpoints in a thread, :mod:`digest.store.checkpoint`, and
   its first hand-over waits for that); ``digest`` is unique on (subscriber, period) and
   ``digest_item`` on (subscriber, paper), so a paper reaches a subscriber at most once
   and a period has at most one digest, across reruns, crashes and concurrent runs.
2. **Claimed before sent, by a live claimant.** :func:`claim_batch` is one conditional
   ``UPDATE … WHERE ready`` per batch, committed before the hand-over; it records which
   claimant (:mod:`.claims`: a run or worker with a heartbeat on the database clock) holds
   each digest. Two runs never both send one digest; a claim lasts exactly as long as its
   claimant lives, however long the run takes.
3. **Finished as soon as the server answers.** :func:`finish_batch` records ``sent`` or
   ``failed`` for what the transport reported, in small batches flushed within a fraction of
   a second (the outbox: once the files are durable), and only where the claim is still the
   caller's. A crash in between leaves those digests ``sending``; once the claimant is known
   dead they are taken over and re-sent with the same Message-ID (derived from the digest
   key), so only messages in flight at a crash can arrive twice.
4. **Failures are retried, then given up.** A transient failure (4xx, dropped connection) is
   retried after an exponential :func:`backoff` until the digest is older than the give-up
   horizon (days, like an MTA's queue lifetime); a permanent one (5xx for that message) is
   not retried and, when the server refused the address, counts as a hard bounce. Messages
   never attempted (relay down, run stopped) are released or deferred without using up an
   attempt.

Functions here take a session and never commit: the entry point (``digest run``, a queue
worker, the scheduler's deliver job) commits at the points above.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import operator
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from sqlalchemy import ColumnElement, and_, bindparam, or_, select, update
from sqlmodel import Session, col

from digest.digests.claims import CLAIM_TTL, db_now, dead
from digest.ranking.base import Match, Pick, Ranking
from digest.store.bulk import insert_ignoring, insert_returning
from digest.store.models import Claimant, Digest, Subscriber

if TYPE_CHECKING:
    from digest.digests.due import Due
    from digest.digests.selection import Selection

log = logging.getLogger(__name__)
DIGEST = Digest.metadata.tables["digest"]  # the Core tables, for bulk statements
DIGEST_ITEM = Digest.metadata.tables["digest_item"]

STALE_SENDING = timedelta(minutes=15)  # claims made before claimants existed (no claimed_by)
GIVE_UP_AFTER = timedelta(days=5)  # default retry horizon; ``delivery_give_up_days``


def digest_key(subscriber_id: int, period_key: str) -> str:
    """The stable key of a digest; its Message-ID derives from it."""
    return f"{subscriber_id}:{period_key}"


def backoff(attempts: int) -> timedelta:
    """Wait before retry number ``attempts``: 5 min, doubling, at most 6 hours."""
    return timedelta(minutes=min(5 * 2 ** max(attempts - 1, 0), 6 * 60))


# Recording ------------------------------------------------------------------------------


# One recorded item, as stored and as rendered: paper id, score (rounded as stored), reason,
# matched interests.
Item = tuple[int, float, str, tuple[str, ...]]
Explained = tuple[str, tuple[str, ...], str]  # reason, matched interests, the latter as JSON
ROWS_AT_ONCE = 2_000  # digests whose item rows are made together (never all 2 million rows)
EXPLAIN_AT_ONCE = 1 << 17  # picks explained together (a few MB of arrays, not 100s)


@dataclass(frozen=True, slots=True, eq=False)
class Explanations:
    """Each pick's explanation in a run's :class:`~digest.ranking.base.Ranking`: every
    distinct one once (``table``), and per pick its position there (``of_pick``)."""

    table: list[Explained]
    of_pick: npt.NDArray[np.int32]
    # The table's reasons and JSON-encoded matched interests, as columns (what a row stores).
    reasons: list[str]
    matched_json: list[str]


@dataclass(slots=True)
class Recorded:
    """A digest this call wrote, with what it holds (kept in memory for rendering).

    ``explanations`` are those of the selection's whole ranking and ``paper_ids`` the store
    ids of its candidate papers (by the ranking's paper index), both shared by every digest
    of the run."""

    digest_id: int
    selection: Selection
    status: str  # pending | empty
    explanations: Explanations | None = None
    paper_ids: npt.NDArray[np.int64] | None = None

    @property
    def due(self) -> Due:
        return self.selection.due

    def explained(self) -> list[Explained]:
        """Each pick's explanation, in rank order."""
        if self.explanations is None:
            return []
        row = self.selection.row
        start, stop = self.selection.ranking.bounds[row : row + 2].tolist()
        return list(
            map(self.explanations.table.__getitem__, self.explanations.of_pick[start:stop].tolist())
        )

    def items(self) -> tuple[Item, ...]:
        """The ledger items as stored, in rank order (built on demand: a run keeps the
        ranking's arrays, not 2 million items)."""
        explained = self.explained()
        if not explained:
            return ()
        assert self.paper_ids is not None  # set with the explanations
        ranking, row = self.selection.ranking, self.selection.row
        start, stop = ranking.bounds[row : row + 2].tolist()
        return tuple(
            zip(
                self.paper_ids[ranking.docs[start:stop]].tolist(),
                rounded(ranking.scores[start:stop]),
                map(_FIRST, explained),
                map(_SECOND, explained),
                strict=True,
            )
        )


def record_digests(
    session: Session, selections: Sequence[Selection], *, now: datetime, keep_empty: bool = False
) -> list[Recorded]:
    """Write the digest rows and their ledger items, in bulk; the ones written.

    A period that already has a digest (another run got there first) is skipped. An empty
    selection is recorded as ``empty`` (no email) unless ``keep_empty`` asks for a short
    "nothing new" note, which is then delivered like any digest.
    """
    by_subscriber = {s.due.subscriber.id: s for s in selections}
    rows = [
        (
            s.due.subscriber.id,
            s.due.period.key,
            s.due.period.label,
            "pending" if s.count or keep_empty else "empty",
            s.due.window_start,
            now,
            now,
            s.count,
            0,
        )
        for s in selections
    ]
    insert = functools.partial(
        insert_returning,
        session,
        DIGEST,
        _DIGEST_COLUMNS,
        rows,
        conflict=("subscriber_id", "period_key"),
        returning=("id", "subscriber_id", "status"),
    )
    ids_of: dict[int, npt.NDArray[np.int64]] = {}  # by the candidate list's identity
    for s in selections:
        if id(s.papers) not in ids_of:
            ids_of[id(s.papers)] = np.array([paper.id or 0 for paper in s.papers], dtype=np.int64)
    if _driver_waits_unlocked(session):
        # The server inserts the digest rows while this thread explains the picks (arrays
        # and strings only: nothing here reads the session or its objects meanwhile).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="digest-record") as pool:
            pending = pool.submit(insert)
            explained = _explained(selections)
            inserted = pending.result()
    else:
        inserted = insert()
        explained = _explained(selections)
    del rows, insert
    inserted.sort()  # by digest id: items are written in the digests' order
    recorded = []
    for digest_id, subscriber_id, status in inserted:
        selection = by_subscriber[subscriber_id]
        explanations = explained.get(id(selection.ranking))
        paper_ids = ids_of[id(selection.papers)]
        recorded.append(Recorded(digest_id, selection, status, explanations, paper_ids))
    if any(entry.selection.count for entry in recorded):
        insert_ignoring(
            session,
            DIGEST_ITEM,
            _ITEM_COLUMNS,
            _ItemRows(recorded),
            conflict=("subscriber_id", "paper_id"),
        )
    for entry in recorded:
        if entry.due.missed:
            log.info(
                "catch-up: digest %s for %s (missed send time %s)",
                entry.due.period.key,
                entry.due.subscriber.email,
                entry.due.period.send_at.isoformat(),
            )
    return recorded


def _driver_waits_unlocked(session: Session) -> bool:
    """Whether a statement's database work leaves this process's other threads free to run
    Python meanwhile: PostgreSQL's server works in its own process while psycopg waits with
    the GIL released. Not SQLite: ``sqlite3`` releases the GIL around every row it steps and
    takes it back after, so a Python thread running alongside can hold the writer up for a
    switch interval (5 ms) per row (measured: an ``executemany`` of 1.9 million rows went
    from 10.6 to 39.9 s beside a Python loop)."""
    return session.get_bind().dialect.name == "postgresql"


def _explained(selections: Sequence[Selection]) -> dict[int, Explanations]:
    """The explanations of the selections' rankings, by the ranking's identity (one per run)."""
    explained: dict[int, Explanations] = {}
    for s in selections:
        if id(s.ranking) not in explained and s.ranking.docs.size:
            explained[id(s.ranking)] = explain(s.ranking)
    return explained


_DIGEST_COLUMNS = (
    "subscriber_id",
    "period_key",
    "period_label",
    "status",
    "window_start",
    "window_end",
    "created_at",
    "item_count",
    "attempts",
)
_ITEM_COLUMNS = ("digest_id", "subscriber_id", "paper_id", "rank", "score", "reason", "matched")


def explain(ranking: Ranking) -> Explanations:
    """Each pick's explanation, every distinct one built and JSON-encoded once.

    An explanation depends on its matches' wording only (``Pick.reason`` reads a match's
    interest, fields, evidence and words, never its contribution): each distinct match gets
    the id of its wording, each pick the sequence of its matches' wording ids, and one
    explanation is built per distinct sequence (picks with the same number of matches at
    once, as rows of an array; ``EXPLAIN_AT_ONCE`` picks at a time, so that the arrays stay
    small)."""
    wording: dict[tuple[Any, ...], int] = {}
    speakers: list[Match] = []  # one match of each wording
    said: list[int] = []  # each match's wording
    for match in ranking.matches:
        key = (match.interest, match.fields, match.evidence, match.words)
        at = wording.get(key)
        if at is None:
            at = wording[key] = len(speakers)
            speakers.append(match)
        said.append(at)
    wordings = np.array(said, dtype=np.int64)
    by_interests: dict[tuple[str, ...], tuple[tuple[str, ...], str]] = {}
    table: list[Explained] = []
    known: dict[tuple[int, ...], int] = {}  # a sequence of wordings -> its place in table
    bounds = ranking.match_bounds
    of_pick = np.zeros(bounds.size - 1, dtype=np.int32)
    for first in range(0, of_pick.size, EXPLAIN_AT_ONCE):  # a slice of picks at a time
        edges = bounds[first : first + EXPLAIN_AT_ONCE + 1]
        counts = np.diff(edges)
        for count in np.unique(counts).tolist():
            picks = np.flatnonzero(counts == count)
            seq = wordings[ranking.match_ids[edges[picks][:, None] + np.arange(count)]]
            distinct, inverse = _distinct_rows(seq, len(speakers))
            places = []
            for ids in distinct:
                at = known.get(tuple(ids))
                if at is None:
                    at = known[tuple(ids)] = len(table)
                    found = tuple(map(speakers.__getitem__, ids))
                    interests = tuple(m.interest for m in found)
                    shared = by_interests.get(interests)
                    if shared is None:
                        shared = by_interests[interests] = (interests, json.dumps(list(interests)))
                    table.append((Pick(0, 0.0, found).reason(), *shared))
                places.append(at)
            of_pick[first + picks] = np.array(places, dtype=np.int32)[inverse]
    return Explanations(table, of_pick, list(map(_FIRST, table)), list(map(_THIRD, table)))


_HALF_SLACK = 1e-15  # relative: well above the product's rounding error (2 ** -53)


def rounded(scores: npt.NDArray[np.float64]) -> list[float]:
    """``[round(score, 6) for score in scores]`` (a score as stored), without a Python call
    per score: ``round`` gives the double nearest to the score's decimal rounding at six
    places, and so does ``rint(score * 1e6) / 1e6`` (a division of two exact doubles is
    correctly rounded) unless the product's own rounding error could have moved it across
    a half, or it is too large for exact integers: those few (and NaN, infinities) take
    ``round`` itself."""
    with np.errstate(over="ignore", invalid="ignore"):  # infinities and NaN: doubtful
        scaled = scores * 1e6
        out = np.rint(scaled) / 1e6
        distance = np.abs(scaled - np.floor(scaled) - 0.5)  # to the nearest half
        clear = (distance > _HALF_SLACK * np.maximum(np.abs(scaled), 1.0)) & (
            np.abs(scaled) < 2.0**52
        )
    doubtful = np.flatnonzero(~clear)
    if doubtful.size:
        out[doubtful] = [round(score, 6) for score in scores[doubtful].tolist()]
    values: list[float] = out.tolist()
    return values


def _distinct_rows(
    seq: npt.NDArray[np.int64], base: int
) -> tuple[list[list[int]], npt.NDArray[np.int64]]:
    """The distinct rows of ``seq`` (values in ``[0, base)``) and each row's position among
    them: one column at a time, the rows' ids so far times ``base`` plus the next column,
    renumbered (``np.unique(axis=0)`` sorts rows as records, several times slower)."""
    key = np.zeros(seq.shape[0], dtype=np.int64)
    for column in seq.T:
        _, key = np.unique(key * base + column, return_inverse=True)
        key = key.reshape(-1)
    one = np.zeros(int(key.max(initial=-1)) + 1, dtype=np.int64)
    one[key] = np.arange(key.size)  # a row of each id (rows with one id are equal)
    return seq[one].tolist(), key


class _ItemRows:
    """The ``digest_item`` rows of recorded digests, made as they are written
    (``ROWS_AT_ONCE`` digests at a time, never all 2 million rows at once); iterable again
    (PostgreSQL's fallback copies twice)."""

    def __init__(self, recorded: list[Recorded]) -> None:
        self._recorded = recorded

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        recorded = self._recorded
        for start in range(0, len(recorded), ROWS_AT_ONCE):
            block = recorded[start : start + ROWS_AT_ONCE]
            # Consecutive digests of one ranking (one run: all of them) at a time.
            for _, group in itertools.groupby(block, key=run_of):
                yield from _rows(list(group))


def run_of(entry: Recorded) -> tuple[int, int]:
    """What the digests recorded by one run share (their ranking and candidate papers):
    consecutive digests with the same key are read from the same arrays."""
    return id(entry.selection.ranking), id(entry.selection.papers)


def _rows(entries: list[Recorded]) -> list[tuple[Any, ...]]:
    """The item rows of ``entries`` (digests of one ranking), in order, each in rank order."""
    first = entries[0]
    ranking, explanations, paper_ids = first.selection.ranking, first.explanations, first.paper_ids
    if explanations is None or paper_ids is None:
        return []
    rows = np.array([entry.selection.row for entry in entries], dtype=np.int64)
    starts = ranking.bounds[rows]
    counts = ranking.bounds[rows + 1] - starts
    before = np.cumsum(counts) - counts  # where each digest's rows begin in the block
    ranks = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(before, counts)
    picks = np.repeat(starts, counts) + ranks
    at = explanations.of_pick[picks].tolist()
    return list(
        zip(
            np.repeat([entry.digest_id for entry in entries], counts).tolist(),
            np.repeat([entry.due.subscriber.id for entry in entries], counts).tolist(),
            paper_ids[ranking.docs[picks]].tolist(),
            (ranks + 1).tolist(),
            rounded(ranking.scores[picks]),
            map(explanations.reasons.__getitem__, at),
            map(explanations.matched_json.__getitem__, at),
            strict=True,
        )
    )


_FIRST = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
_THIRD = operator.itemgetter(2)


# Readiness and claims ---------------------------------------------------------------------


def ready(now: datetime, *, stale_before: datetime) -> ColumnElement[bool]:
    """Digests a run may (re)send at ``now``: pending; failed and due for a retry; or
    ``sending`` under a claim that is void (its claimant dead, see :mod:`.claims`).

    ``stale_before`` is the database clock minus the claim TTL. Digests claimed before
    claimants existed (no ``claimed_by``) keep the old rule: stale at ``next_attempt_at``.
    """
    retry_due = col(Digest.next_attempt_at) <= now
    void_claim = col(Digest.claimed_by).in_(
        select(col(Claimant.id)).where(dead(stale_before)).scalar_subquery()
    )
    legacy = col(Digest.claimed_by).is_(None) & or_(
        retry_due,
        col(Digest.next_attempt_at).is_(None) & (col(Digest.created_at) <= now - STALE_SENDING),
    )
    return or_(
        col(Digest.status) == "pending",
        (col(Digest.status) == "failed") & retry_due,
        (col(Digest.status) == "sending") & or_(void_claim, legacy),
    )


def stale_before(session: Session) -> datetime:
    """The database clock minus the claim TTL: claimants silent since then are dead."""
    return db_now(session) - CLAIM_TTL


def deliverable(session: Session, *, now: datetime, subscriber_id: int | None = None) -> list[int]:
    """Ids of the digests ready to (re)send at ``now``, oldest first."""
    statement = select(col(Digest.id)).where(ready(now, stale_before=stale_before(session)))
    if subscriber_id is not None:
        statement = statement.where(col(Digest.subscriber_id) == subscriber_id)
    return list(session.execute(statement.order_by(col(Digest.id))).scalars())


def any_deliverable(session: Session, *, now: datetime) -> bool:
    """Whether some digest is ready to (re)send at ``now`` (one indexed probe)."""
    statement = select(col(Digest.id)).where(ready(now, stale_before=stale_before(session)))
    return session.execute(statement.limit(1)).first() is not None


@dataclass(slots=True)
class Claimed:
    """What one :func:`claim_batch` got: digests to send, and digests refused at once."""

    ids: list[int] = field(default_factory=list)
    refused: list[tuple[int, str, str]] = field(default_factory=list)  # id, email, reason


def claim_batch(
    session: Session, ids: Sequence[int], *, now: datetime, claimant: int, bounce_limit: int
) -> Claimed:
    """Atomically mark the ready digests among ``ids`` ``sending`` under ``claimant``.

    Digests another claimant holds are left alone. A digest whose subscriber is no longer
    active (or bounced out) is claimed and failed at once, never retried.
    """
    if not ids:
        return Claimed()
    statement = (
        update(Digest)
        .where(col(Digest.id).in_(list(ids)), ready(now, stale_before=stale_before(session)))
        .values(status="sending", claimed_by=claimant, attempts=col(Digest.attempts) + 1)
        .returning(col(Digest.id))
        .execution_options(synchronize_session=False)
    )
    got = sorted(session.execute(statement).scalars())
    result = Claimed()
    if not got:
        return result
    inactive = session.execute(
        select(col(Digest.id), col(Subscriber.email), col(Subscriber.status))
        .join(Subscriber, col(Digest.subscriber_id) == col(Subscriber.id))
        .where(
            col(Digest.id).in_(got),
            or_(col(Subscriber.status) != "active", col(Subscriber.bounce_count) >= bounce_limit),
        )
    ).all()
    gone = {digest_id for digest_id, _, _ in inactive}
    for digest_id, email, status in inactive:
        result.refused.append((digest_id, email, f"not sent: subscriber is {status}"))
    if gone:
        finish_batch(
            session,
            [Finish(d, "refused", error=reason) for d, _, reason in result.refused],
            now=now,
            claimant=claimant,
        )
    result.ids = [d for d in got if d not in gone]
    return result


# Finishing ------------------------------------------------------------------------------

FinishStatus = Literal["sent", "retry", "refused", "bounced", "deferred", "released"]


@dataclass(frozen=True, slots=True)
class Finish:
    """How the hand-over of one claimed digest ended.

    sent: accepted; retry: transient failure (4xx, dropped); refused: permanent failure not
    caused by the address (rendering, message too large); bounced: the server refused the
    address (a hard bounce); deferred: never attempted (relay down); released: never handed
    over (the run stopped) — back to pending without using up an attempt.
    """

    digest_id: int
    status: FinishStatus
    error: str | None = None
    subject: str | None = None
    message_id: str | None = None


def finish_batch(
    session: Session,
    finishes: Iterable[Finish],
    *,
    now: datetime,
    claimant: int,
    give_up_after: timedelta = GIVE_UP_AFTER,
) -> int:
    """Record outcomes of digests ``claimant`` holds; how many claims were lost meanwhile.

    A lost claim (another process decided this one was dead and took the digest over) is
    logged: the message went out anyway, and the taker may send it again.
    """
    groups: dict[FinishStatus, list[Finish]] = {}
    for item in finishes:
        groups.setdefault(item.status, []).append(item)
    table = DIGEST  # Core, not ORM: one executemany per group
    mine = and_(
        table.c.id == bindparam("b_id"),
        table.c.claimed_by == claimant,
        table.c.status == "sending",
    )
    lost = 0
    for status, items in groups.items():
        values = _finish_values(status, now=now)
        rows: list[dict[str, Any]] = [
            {
                "b_id": f.digest_id,
                "b_error": f.error,
                "b_subject": f.subject,
                "b_message_id": f.message_id,
            }
            for f in items
        ]
        if status == "retry":
            times = retry_times(
                session, [f.digest_id for f in items], now=now, give_up_after=give_up_after
            )
            for row in rows:
                row["b_retry_at"] = times.get(row["b_id"])
        statement = update(table).where(mine).values(last_error=bindparam("b_error"), **values)
        result = session.connection().execute(statement, rows)
        lost += len(rows) - int(result.rowcount)
        if status == "bounced":
            _count_bounces(session, [f.digest_id for f in items])
    if lost:
        log.warning("claimant %d: %d claim(s) were taken over before they finished", claimant, lost)
    return lost


def _finish_values(status: FinishStatus, *, now: datetime) -> dict[str, Any]:
    """The column values a finish of ``status`` writes (per-row values as bind parameters)."""
    if status == "sent":
        return {
            "status": "sent",
            "sent_at": now,
            "next_attempt_at": None,
            "subject": bindparam("b_subject"),
            "message_id": bindparam("b_message_id"),
        }
    if status == "retry":
        return {"status": "failed", "next_attempt_at": bindparam("b_retry_at")}
    if status == "deferred":
        return {
            "status": "failed",
            "attempts": DIGEST.c.attempts - 1,
            "next_attempt_at": now,
        }
    if status == "released":
        return {"status": "pending", "attempts": DIGEST.c.attempts - 1, "claimed_by": None}
    return {"status": "failed", "next_attempt_at": None}  # refused, bounced


def retry_times(
    session: Session, digest_ids: Sequence[int], *, now: datetime, give_up_after: timedelta
) -> dict[int, datetime | None]:
    """When each digest's transient failure is retried; None: past the horizon, given up."""
    rows = session.execute(
        select(col(Digest.id), col(Digest.attempts), col(Digest.created_at)).where(
            col(Digest.id).in_(list(digest_ids))
        )
    ).all()
    return {
        digest_id: None if now - created > give_up_after else now + backoff(attempts)
        for digest_id, attempts, created in rows
    }


def _count_bounces(session: Session, digest_ids: list[int]) -> None:
    owners = select(col(Digest.subscriber_id)).where(col(Digest.id).in_(digest_ids))
    error = (
        select(col(Digest.last_error))
        .where(col(Digest.subscriber_id) == col(Subscriber.id), col(Digest.id).in_(digest_ids))
        .limit(1)
        .scalar_subquery()
    )
    session.execute(
        update(Subscriber)
        .where(col(Subscriber.id).in_(owners))
        .values(bounce_count=col(Subscriber.bounce_count) + 1, last_bounce=error)
        .execution_options(synchronize_session=False)
    )
    for subscriber_id, count in session.execute(
        select(col(Subscriber.id), col(Subscriber.bounce_count)).where(
            col(Subscriber.id).in_(owners)
        )
    ).all():
        log.warning("hard bounce %d for subscriber %d", count, subscriber_id)


def sent_ages(session: Session, *, within: timedelta = timedelta(hours=1)) -> list[float]:
    """Seconds since each message of the last ``within`` was sent (database clock): what an
    hourly rate limit has already used up."""
    now = db_now(session)
    sent = session.execute(
        select(col(Digest.sent_at)).where(
            col(Digest.status) == "sent", col(Digest.sent_at) > now - within
        )
    ).scalars()
    return [max((now - at).total_seconds(), 0.0) for at in sent if at is not None]
