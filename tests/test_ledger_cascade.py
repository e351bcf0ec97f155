"""The ledger's items without per-row foreign keys (migration 0010): what the foreign keys
guaranteed still holds, on SQLite and PostgreSQL.

Deleting a digest, or a subscriber (whose digests cascade), deletes their items (a trigger
on ``digest``); an older store's items survive the migration and follow the same rule; the
never-a-duplicate guarantee (unique subscriber, paper) is untouched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import delete, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from digest.config.settings import Settings
from digest.ranking import get_ranker
from digest.runner import build_due_digests
from digest.store import db
from digest.store.models import Digest, DigestItem
from digest.subscribers.library import remove_subscriber
from tests.scheduler_support import add_papers, subscribe

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _recorded(settings: Settings, readers: int) -> None:
    add_papers(settings, now=NOW - timedelta(hours=3), count=3)
    for i in range(readers):
        subscribe(settings, f"reader{i}@example.org", at=NOW - timedelta(days=2))
    build_due_digests(db.get_engine(settings), settings=settings, now=NOW, ranker=get_ranker())


def _items_by_subscriber(settings: Settings) -> Counter[int]:
    with db.transaction(settings) as session:
        return Counter(session.execute(select(col(DigestItem.subscriber_id))).scalars())


def test_removing_a_subscriber_removes_their_digests_and_items(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    _recorded(settings, 2)
    before = _items_by_subscriber(settings)
    assert len(before) == 2 and all(count == 3 for count in before.values())
    with db.transaction(settings) as session:
        remove_subscriber(session, "reader0@example.org")
    after = _items_by_subscriber(settings)
    assert after == Counter({sid: n for sid, n in before.items() if sid in after})
    assert len(after) == 1
    with db.transaction(settings) as session:
        assert session.execute(select(func.count()).select_from(Digest)).scalar_one() == 1


def test_deleting_a_digest_deletes_its_items_only(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    _recorded(settings, 2)
    with db.transaction(settings) as session:
        first = session.execute(select(func.min(col(Digest.id)))).scalar_one()
        session.execute(delete(Digest).where(col(Digest.id) == first))
    with db.transaction(settings) as session:
        digests = set(session.execute(select(col(DigestItem.digest_id))).scalars())
        count = session.execute(select(func.count()).select_from(DigestItem)).scalar_one()
    assert first not in digests and len(digests) == 1 and count == 3


def test_a_paper_reaches_a_subscriber_at_most_once(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    _recorded(settings, 1)
    with (
        pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"),
        db.transaction(settings) as session,
    ):
        item = session.execute(select(DigestItem)).scalars().first()
        assert item is not None
        session.add(
            DigestItem(
                digest_id=item.digest_id,
                subscriber_id=item.subscriber_id,
                paper_id=item.paper_id,
                rank=9,
                score=0.1,
            )
        )
        session.flush()


def test_items_recorded_before_the_migration_survive_it_and_cascade_after(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    engine = db.create_db_engine(settings.resolved_database_url)
    if engine.dialect.name == "sqlite":  # what get_engine's engines do on connect
        event.listen(engine, "connect", db._sqlite_pragmas)
    config = Config()
    config.set_main_option("script_location", str(db.MIGRATIONS))
    config.attributes["engine"] = engine
    command.upgrade(config, "0009")  # the store as it was, with its foreign keys
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO subscriber (id, email, status, frequency, weekday, hour, "
                    "timezone, popularity_weight, token, origin, bounce_count, created_at, "
                    "updated_at) VALUES (1, 'a@example.org', 'active', 'weekly', 0, 8, 'UTC', "
                    "0, 't', 'cli', 0, :now, :now)"
                ),
                {"now": NOW},
            )
            connection.execute(
                text(
                    "INSERT INTO paper (id, key, title, abstract, authors, categories, "
                    "keywords, first_source, first_seen_at, updated_at) VALUES "
                    "(1, 'k1', 'T', '', '[]', '[]', '[]', 's', :now, :now), "
                    "(2, 'k2', 'T', '', '[]', '[]', '[]', 's', :now, :now)"
                ),
                {"now": NOW},
            )
            connection.execute(
                text(
                    "INSERT INTO digest (id, subscriber_id, period_key, period_label, status, "
                    "window_start, window_end, created_at, item_count, attempts) VALUES "
                    "(1, 1, 'w1', 'W1', 'sent', :now, :now, :now, 2, 1), "
                    "(2, 1, 'w2', 'W2', 'sent', :now, :now, :now, 0, 1)"
                ),
                {"now": NOW},
            )
            connection.execute(
                text(
                    "INSERT INTO digest_item (digest_id, subscriber_id, paper_id, rank, score, "
                    "reason, matched) VALUES (1, 1, 1, 1, 0.5, 'r', '[]'), "
                    "(1, 1, 2, 2, 0.4, 'r', '[]')"
                )
            )
        command.upgrade(config, "heads")
        with engine.begin() as connection:
            rows = connection.execute(
                text("SELECT paper_id, rank FROM digest_item ORDER BY rank")
            ).all()
            assert [tuple(r) for r in rows] == [(1, 1), (2, 2)]
            connection.execute(text("DELETE FROM digest WHERE id = 1"))
            left = connection.execute(text("SELECT count(*) FROM digest_item")).scalar_one()
        assert left == 0
        command.downgrade(config, "0009")  # and back: the foreign keys again
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM digest_item"))
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO digest_item (digest_id, subscriber_id, paper_id, rank, score, "
                    "reason, matched) VALUES (99, 1, 1, 1, 0.5, 'r', '[]')"
                )
            )
    finally:
        engine.dispose()
