"""Helpers for the feed tests: more papers and more digests through the real pipeline."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select
from sqlmodel import col
from web_fixtures import IMPORTED, RUN_AT  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package

from digest.config.settings import Settings
from digest.delivery import OutboxTransport
from digest.runner import run_digests
from digest.store import db
from digest.store.models import Digest, DigestItem, Paper
from digest.store.papers import upsert_records
from digest.store.records import PaperRecord
from digest.subscribers.library import ProfileSpec, SubscriberFields, add_subscriber


def import_papers(settings: Settings, *records: PaperRecord, day: int = 0) -> None:
    """Store ``records`` as a listing imported ``day`` days after the first one."""
    with db.transaction(settings) as session:
        upsert_records(session, list(records), source="test", now=IMPORTED + timedelta(days=day))


def diffusion_paper(n: int) -> PaperRecord:
    return PaperRecord(
        title=f"Diffusion schedules, part {n}",
        abstract="Noise schedules for diffusion models.",
        authors=("Grace Hopper",),
        arxiv_id=f"2611.{10 + n:05d}",
        url=f"https://arxiv.org/abs/2611.{10 + n:05d}",
    )


def deliver(settings: Settings, email: str, *, day: int) -> None:
    """Run the digest of ``email`` on ``day`` days after the first run; one must be sent."""
    report = run_digests(
        settings,
        now=RUN_AT + timedelta(days=day),
        subscriber_email=email,
        transport=OutboxTransport(settings.resolved_outbox_dir),
    )
    assert report.sent == 1, report.as_dict()


def delivered_history(settings: Settings, *, subscribers: int, digests: int, items: int) -> None:
    """``subscribers`` active subscribers, each with ``digests`` sent digests of ``items``
    papers, written as the ledger writes them (one bulk insert instead of a run per digest:
    the export tests need hundreds of feeds with real items, not the ranking)."""
    papers = [
        PaperRecord(
            title=f"Paper {n} on learning",
            abstract="A long abstract about learning. " * 20,
            authors=tuple(f"Author {n}-{k}" for k in range(6)),
            arxiv_id=f"2612.{n:05d}",
            url=f"https://arxiv.org/abs/2612.{n:05d}",
        )
        for n in range(digests * items)
    ]
    import_papers(settings, *papers)
    with db.transaction(settings) as session:
        paper_ids = session.execute(select(Paper.id).order_by(col(Paper.id))).scalars().all()
        subscriber_ids = []
        for n in range(subscribers):
            subscriber = add_subscriber(
                session,
                email=f"reader{n}@example.org",
                profile=ProfileSpec(keywords=["learning"]),
                fields=SubscriberFields(name=f"Reader {n}", frequency="off"),
                settings=settings,
                now=IMPORTED,
            )
            subscriber_ids.append(subscriber.id)
        for subscriber_id in subscriber_ids:
            for d in range(digests):
                sent = RUN_AT + timedelta(days=7 * d)
                digest = Digest(
                    subscriber_id=subscriber_id,
                    period_key=f"2026-W{48 + d}",
                    period_label=f"week {d}",
                    status="sent",
                    window_start=sent - timedelta(days=7),
                    window_end=sent,
                    created_at=sent,
                    sent_at=sent,
                    item_count=items,
                    attempts=1,
                )
                session.add(digest)
                session.flush()
                session.execute(
                    insert(DigestItem),
                    [
                        {
                            "digest_id": digest.id,
                            "subscriber_id": subscriber_id,
                            "paper_id": paper_ids[d * items + rank],
                            "rank": rank + 1,
                            "score": 1.0,
                            "reason": 'matched "learning" (title)',
                            "matched": ["learning"],
                        }
                        for rank in range(items)
                    ],
                )
