"""Delivery in batches keeps the ledger's guarantees (digest/digests/ledger.py).

Both backends. A run stopped between batch states hands back what it never handed over; a
live claimant keeps its claims however late another run's clock is; a dead one loses them
at once; a failure on our side leaves digests retryable at once; one bad message does not
stop the others; bulk inserts skip conflicts.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, Interval, MetaData, Table, delete, func, select, update
from sqlmodel import Session, col

from digest.config.settings import Settings
from digest.delivery.base import BaseTransport
from digest.digests.claims import ClaimantLease, reap_local
from digest.digests.ledger import DIGEST, DIGEST_ITEM
from digest.errors import DeliveryError
from digest.ranking import get_ranker
from digest.runner import build_due_digests, run_digests
from digest.store import db
from digest.store.bulk import insert_ignoring, insert_returning
from digest.store.models import Claimant, Digest, DigestItem, Subscriber
from digest.testing.smtp import SmtpSink
from tests.scheduler_support import add_papers, subscribe

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def smtp(backend: str, make_settings: Callable[..., Settings], sink: SmtpSink) -> Settings:
    return make_settings(
        delivery="smtp", smtp_host=sink.host, smtp_port=sink.port, delivery_batch=3
    )


def readers(settings: Settings, count: int) -> None:
    add_papers(settings, now=NOW - timedelta(hours=3), count=3)
    for i in range(count):
        subscribe(settings, f"reader{i:02d}@example.org", at=NOW - timedelta(days=2))


def statuses(settings: Settings) -> Counter[str]:
    with db.transaction(settings) as session:
        return Counter(session.execute(select(col(Digest.status))).scalars())


class Crashing(BaseTransport):
    """Hands ``allowed`` messages to the real server, then the process "dies"."""

    name = "crashing"

    def __init__(self, sink: SmtpSink, allowed: int) -> None:
        from digest.delivery.smtp import SmtpTransport  # noqa: PLC0415 - the real one inside

        self.inner = SmtpTransport(host=sink.host, port=sink.port, retry_wait=0)
        self.allowed = allowed

    def close(self) -> None:
        self.inner.close()

    def send_bytes(
        self, data: bytes, *, envelope_from: str, recipient: str, message_id: str
    ) -> None:
        if self.allowed == 0:
            raise KeyboardInterrupt  # stands in for a crash: not a delivery error
        self.allowed -= 1
        self.inner.send_bytes(
            data, envelope_from=envelope_from, recipient=recipient, message_id=message_id
        )


def test_a_run_stopped_mid_batch_hands_back_what_it_never_handed_over(
    smtp: Settings, sink: SmtpSink
) -> None:
    readers(smtp, 8)
    with pytest.raises(KeyboardInterrupt):
        run_digests(smtp, now=NOW, transport=Crashing(sink, allowed=4))
    # Four went out and were recorded; nothing claimed is left behind in `sending`.
    assert statuses(smtp) == Counter({"sent": 4, "pending": 4})
    with db.transaction(smtp) as session:
        attempts = set(session.execute(select(col(Digest.attempts))).scalars())
    assert attempts == {0, 1}  # the handed-back ones used up no attempt
    report = run_digests(smtp, now=NOW)
    assert report.sent == 4 and statuses(smtp) == Counter({"sent": 8})
    ids = Counter(m.message["Message-ID"] for m in sink.messages)
    assert len(ids) == 8 and set(ids.values()) == {1}


def test_a_live_claimant_keeps_its_claims_whatever_the_clock_of_another_run(
    smtp: Settings, sink: SmtpSink
) -> None:
    readers(smtp, 2)
    engine = db.get_engine(smtp)
    build_due_digests(engine, settings=smtp, now=NOW, ranker=get_ranker())
    with ClaimantLease(engine, kind="run") as other:
        with db.transaction(smtp) as session:  # another process claimed both and is sending
            session.execute(update(Digest).values(status="sending", claimed_by=other.id))
        later = run_digests(smtp, now=NOW + timedelta(minutes=16))
        assert later.sent == 0 and not sink.messages
    # Its clean exit ends the claimant: the claims are void at once, for the next run.
    assert run_digests(smtp, now=NOW + timedelta(minutes=17)).sent == 2


def test_a_dead_claimant_on_this_host_loses_its_claims_at_once(
    smtp: Settings, sink: SmtpSink
) -> None:
    readers(smtp, 2)
    engine = db.get_engine(smtp)
    # A claimant row of a process that is gone (pid beyond the kernel's maximum).
    with db.transaction(smtp) as session:
        gone = Claimant(
            kind="run",
            host=os.uname().nodename,
            pid=2**22 + 1,
            started_at=NOW,
            heartbeat_at=datetime.now(UTC),
        )
        session.add(gone)
        session.flush()
        gone_id = gone.id
    build_due_digests(engine, settings=smtp, now=NOW, ranker=get_ranker())
    with db.transaction(smtp) as session:
        session.execute(update(Digest).values(status="sending", claimed_by=gone_id, attempts=1))
    # Its heartbeat is fresh, but this host knows the process is dead: no waiting.
    with db.transaction(smtp) as session:
        assert reap_local(session, now=datetime.now(UTC)) == 1
    assert run_digests(smtp, now=NOW).sent == 2


def test_an_unusable_outbox_claims_nothing_and_sends_later(
    backend: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("in the way")
    settings = make_settings(outbox_dir=blocker / "outbox")
    readers(settings, 3)
    with pytest.raises(DeliveryError, match="outbox"):
        run_digests(settings, now=NOW)
    assert statuses(settings) == Counter({"pending": 3})  # never stuck in `sending`
    blocker.unlink()
    assert run_digests(settings, now=NOW).sent == 3  # once the folder is fixed, at once


class Misconfigured(BaseTransport):
    """Fails on our side of the hand-over (a configuration problem), for every message."""

    name = "misconfigured"

    def send_bytes(
        self, data: bytes, *, envelope_from: str, recipient: str, message_id: str
    ) -> None:
        raise DeliveryError("cannot write /srv/outbox/x.eml: read-only file system")


def test_a_failure_on_our_side_defers_everything_retryable_at_once(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(delivery_batch=2)
    readers(settings, 5)
    report = run_digests(settings, now=NOW, transport=Misconfigured())
    assert report.sent == 0 and report.stopped and "read-only" in report.stopped
    with db.transaction(settings) as session:
        rows = session.execute(select(Digest)).scalars().all()
    assert {d.status for d in rows} == {"failed"} and all(d.last_error for d in rows)
    assert all(d.next_attempt_at is not None and d.next_attempt_at <= NOW for d in rows)
    assert all(d.attempts == 0 for d in rows)  # nothing was attempted
    assert run_digests(settings, now=NOW).sent == 5  # the next run, at once


def test_a_message_that_cannot_be_built_fails_alone(smtp: Settings, sink: SmtpSink) -> None:
    readers(smtp, 3)
    with db.transaction(smtp) as session:  # a broken address the header parser refuses
        session.execute(
            update(Subscriber)
            .where(col(Subscriber.email) == "reader01@example.org")
            .values(email="reader01 @@example.org")
        )
    report = run_digests(smtp, now=NOW)
    assert (report.sent, report.failed) == (2, 1)
    assert statuses(smtp) == Counter({"sent": 2, "failed": 1})
    with db.transaction(smtp) as session:
        failed = session.execute(select(Digest).where(col(Digest.status) == "failed")).scalar_one()
    assert failed.next_attempt_at is None and failed.last_error  # not retried: it cannot work


def test_bulk_insert_skips_rows_already_in_the_ledger(smtp: Settings) -> None:
    readers(smtp, 1)
    engine = db.get_engine(smtp)
    build_due_digests(engine, settings=smtp, now=NOW, ranker=get_ranker())
    with db.transaction(smtp) as session:
        digest_id, subscriber_id = session.execute(
            select(col(Digest.id), col(Digest.subscriber_id))
        ).one()
        paper_ids = list(session.execute(select(col(DigestItem.paper_id))).scalars())
        before = session.execute(select(func.count()).select_from(DigestItem)).scalar_one()
        rows = [(digest_id, subscriber_id, pid, 9, 0.5, "again", "[]") for pid in paper_ids]
        _insert_items(session, rows)
        after = session.execute(select(func.count()).select_from(DigestItem)).scalar_one()
    assert before == after == len(paper_ids) > 0


def _insert_items(session: Session, rows: Iterable[tuple[Any, ...]]) -> None:
    insert_ignoring(
        session,
        DIGEST_ITEM,
        ("digest_id", "subscriber_id", "paper_id", "rank", "score", "reason", "matched"),
        rows,
        conflict=("subscriber_id", "paper_id"),
    )


class _Reads:
    """Rows that can be read again, counting the reads (not a list: a generator each time)."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows, self.reads = rows, 0

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        self.reads += 1
        return (row for row in self.rows)


@contextmanager
def one_recorded_digest(settings: Settings) -> Iterator[tuple[Session, int, int, list[int]]]:
    """A reader's digest recorded by phase 1: a session, its id, its subscriber, its papers."""
    readers(settings, 1)
    build_due_digests(db.get_engine(settings), settings=settings, now=NOW, ranker=get_ranker())
    with db.transaction(settings) as session:
        digest_id, subscriber_id = session.execute(
            select(col(Digest.id), col(Digest.subscriber_id))
        ).one()
        paper_ids = sorted(session.execute(select(col(DigestItem.paper_id))).scalars())
        yield session, digest_id, subscriber_id, paper_ids


def test_bulk_insert_streams_rows_and_skips_conflicts_among_new_ones(
    smtp: Settings, backend: str
) -> None:
    with one_recorded_digest(smtp) as (session, digest_id, subscriber_id, paper_ids):
        session.execute(delete(DigestItem).where(col(DigestItem.paper_id) == paper_ids[0]))
        rows = _Reads([(digest_id, subscriber_id, p, 9, 0.5, "again", "[]") for p in paper_ids])
        _insert_items(session, rows)
        stored = session.execute(select(col(DigestItem.paper_id), col(DigestItem.reason))).all()
    assert sorted(p for p, _ in stored) == paper_ids  # one row each: the conflicts skipped
    assert {p for p, reason in stored if reason == "again"} == {paper_ids[0]}  # the new one
    # PostgreSQL's COPY meets the conflict and copies again through a temporary table.
    assert rows.reads == (2 if backend == "postgres" else 1)


HOSTILE = [
    "tab\there, newline\nthere, CR\r, backslash \\ and \\N, \\.",
    'quotes \' " and {braces}, [brackets], "NULL", NULL',
    "ünï — 数学 \U0001f600",
    "",
]


def test_bulk_insert_stores_hostile_text_as_given_on_both_paths(smtp: Settings) -> None:
    """PostgreSQL's binary ``COPY`` (straight in, and through the temporary table after a
    conflict) and SQLite's ``executemany`` store text and JSON text byte for byte: tabs,
    newlines, backslashes, COPY's own ``\\N`` and ``\\.``, quotes, non-BMP characters."""
    with one_recorded_digest(smtp) as (session, digest_id, subscriber_id, paper_ids):
        session.execute(delete(DigestItem))
        wanted = {
            p: (HOSTILE[k % len(HOSTILE)], [HOSTILE[(k + 1) % len(HOSTILE)], "plain"], 0.1 * k)
            for k, p in enumerate(paper_ids)
        }

        def rows(ids: Iterable[int]) -> list[tuple[Any, ...]]:
            return [
                (
                    digest_id,
                    subscriber_id,
                    p,
                    k,
                    wanted[p][2],
                    wanted[p][0],
                    json.dumps(wanted[p][1]),
                )
                for k, p in enumerate(ids, 1)
            ]

        _insert_items(session, rows(paper_ids[:1]))  # straight in
        _insert_items(session, rows(paper_ids))  # the first one conflicts: the other path
        stored = session.execute(
            select(
                col(DigestItem.paper_id),
                col(DigestItem.reason),
                col(DigestItem.matched),
                col(DigestItem.score),
            )
        ).all()
    assert {p: (reason, matched, score) for p, reason, matched, score in stored} == {
        p: (reason, matched, score) for p, (reason, matched, score) in wanted.items()
    }


def test_bulk_insert_refuses_a_column_type_it_cannot_copy_in_binary(
    make_settings: Callable[..., Settings], backend: str
) -> None:
    """PostgreSQL: a column with no binary ``COPY`` type is refused, not sent in some other
    type's binary form for the server to misread."""
    if backend != "postgres":
        pytest.skip("binary COPY is PostgreSQL's")
    table = Table(
        "odd", MetaData(), Column("id", Integer, primary_key=True), Column("at", Interval)
    )
    settings = make_settings()
    with db.transaction(settings) as session:
        table.create(session.connection())
        with pytest.raises(TypeError, match=r"odd\.at"):
            insert_ignoring(session, table, ("id", "at"), [(1, timedelta(1))], conflict=("id",))


def test_insert_returning_returns_the_new_rows_only_and_stores_values_as_given(
    make_settings: Callable[..., Settings], backend: str
) -> None:
    """``bulk.insert_returning`` (PostgreSQL: one ``unnest`` of arrays; SQLite: VALUES lists
    of 500): more rows than one list, text that array literals would have to quote, a
    missing value and time zones; the second call's conflicts are skipped and not returned."""
    settings = make_settings()
    for i in range(2):
        subscribe(settings, f"reader{i:02d}@example.org", at=NOW - timedelta(days=2))
    with db.transaction(settings) as session:
        subscribers = sorted(session.execute(select(col(Subscriber.id))).scalars())
    label = 'week "48", {a,b} \\ NULL — ünï'
    start = datetime(2026, 11, 16, 9, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))

    def row(subscriber: int, k: int) -> tuple[Any, ...]:
        subject = None if k % 7 == 0 else label
        return (
            subscriber,
            f"weekly:{k}",
            f"{label} {k}",
            "pending",
            subject,
            start,
            NOW,
            NOW,
            k,
            0,
        )

    def rows(keys: range) -> list[tuple[Any, ...]]:
        return [row(s, k) for s in subscribers for k in keys]

    columns = (
        "subscriber_id", "period_key", "period_label", "status", "subject", "window_start",
        "window_end", "created_at", "item_count", "attempts",
    )  # fmt: skip
    keys = {"conflict": ("subscriber_id", "period_key"), "returning": ("id", "period_key")}
    with db.transaction(settings) as session:
        first = insert_returning(session, DIGEST, columns, rows(range(600)), **keys)
        second = insert_returning(session, DIGEST, columns, rows(range(590, 610)), **keys)
        stored = session.execute(
            select(
                col(Digest.id), col(Digest.period_key), col(Digest.period_label),
                col(Digest.subject), col(Digest.window_start), col(Digest.item_count),
            )
        ).all()  # fmt: skip
    assert len(first) == 1200 and len({row[0] for row in first}) == 1200
    assert sorted(key for _, key in second) == sorted(
        f"weekly:{k}" for k in range(600, 610) for _ in subscribers
    )
    assert len(stored) == 1220
    assert {row[0] for row in stored} == {row[0] for row in first + second}
    for _, key, period_label, subject, window_start, item_count in stored:
        k = int(key.split(":")[1])
        assert (period_label, subject, item_count) == (
            f"{label} {k}",
            None if k % 7 == 0 else label,
            k,
        )
        assert window_start == start  # the same instant, whatever zone the driver returns
