"""The diff and in-place updates, on SQLite and PostgreSQL."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select
from sqlmodel import SQLModel, col

from digest.config.settings import Settings
from digest.store import db
from digest.store.models import Paper, Sighting
from digest.store.papers import count_papers, papers_first_seen_between, upsert_records
from digest.store.records import PaperRecord

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_new_then_seen(backend: str, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    records = [
        PaperRecord(
            title="Alpha",
            arxiv_id="2411.00001",
            upvotes=3,
            published=T0 - timedelta(days=3),
            listed_at=T0 - timedelta(days=1),
        ),
        PaperRecord(title="Beta", doi="10.1000/beta"),
        PaperRecord(title="Gamma: a title-only paper"),
    ]
    with db.transaction(settings) as session:
        first = upsert_records(session, records, source="hf", now=T0)
    assert first.new == 3 and first.seen == 0
    with db.transaction(settings) as session:
        again = upsert_records(session, records, source="hf", now=T0 + timedelta(hours=1))
        assert again.new == 0 and again.seen == 3
        assert count_papers(session) == 3
        alpha = session.execute(select(Paper).where(Paper.key == "arxiv:2411.00001")).scalar_one()
        assert alpha.published_at == T0 - timedelta(days=3)  # both dates kept
        assert alpha.listed_at == T0 - timedelta(days=1)


def test_same_paper_from_two_sources_and_versions_is_one_row(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    with db.transaction(settings) as session:
        upsert_records(
            session,
            [PaperRecord(title="Alpha", arxiv_id="2411.00001", version=1, upvotes=3)],
            source="hf_daily",
            now=T0,
        )
    later = T0 + timedelta(days=2)
    with db.transaction(settings) as session:
        result = upsert_records(
            session,
            [
                PaperRecord(
                    title="Alpha (revised)",
                    arxiv_id="2411.00001",
                    version=2,
                    upvotes=40,
                    github_repo="https://github.com/x/alpha",
                    announce_type="replace",
                )
            ],
            source="arxiv:cs.LG",
            now=later,
        )
        assert result.new == 0 and result.updated == 1
        paper = session.execute(select(Paper)).scalar_one()
        # Mutable facts updated in place; first_seen_at unchanged so it is never re-announced.
        assert paper.upvotes == 40 and paper.version == 2
        assert paper.github_repo == "https://github.com/x/alpha"
        assert paper.first_seen_at == T0 and paper.updated_at == later
        assert paper.title == "Alpha"  # the first title stays: identity is the key
        sightings = session.execute(select(Sighting).order_by(Sighting.source)).scalars().all()
        assert [(s.source, s.version) for s in sightings] == [("arxiv:cs.LG", 2), ("hf_daily", 1)]
        assert papers_first_seen_between(session, T0 + timedelta(seconds=1), later) == []


def test_sighting_counts_repeats(backend: str, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    record = PaperRecord(
        title="Alpha", arxiv_id="2411.00001", external_id="oai:arXiv.org:2411.00001v1"
    )
    for hour in range(3):
        with db.transaction(settings) as session:
            upsert_records(session, [record], source="arxiv", now=T0 + timedelta(hours=hour))
    with db.transaction(settings) as session:
        sighting = session.execute(select(Sighting)).scalar_one()
        assert sighting.times_seen == 3
        assert sighting.first_seen_at == T0
        assert sighting.last_seen_at == T0 + timedelta(hours=2)


def test_duplicates_within_a_batch_merge(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    with db.transaction(settings) as session:
        result = upsert_records(
            session,
            [
                PaperRecord(title="Alpha", arxiv_id="2411.00001"),
                PaperRecord(
                    title="Alpha", arxiv_id="2411.00001v2", abstract="Now with text.", upvotes=5
                ),
            ],
            source="hf",
            now=T0,
        )
        assert result.new == 1 and result.seen == 1
        paper = session.execute(select(Paper)).scalar_one()
        assert paper.abstract == "Now with text." and paper.upvotes == 5


def test_large_batch(backend: str, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    records = [PaperRecord(title=f"Paper {i}", arxiv_id=f"2411.{i:05d}") for i in range(1, 1501)]
    with db.transaction(settings) as session:
        assert upsert_records(session, records, source="bulk", now=T0).new == 1500
    with db.transaction(settings) as session:
        assert upsert_records(session, records[:700], source="bulk", now=T0).new == 0


def test_rollback_stores_nothing(backend: str, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    try:
        with db.transaction(settings) as session:
            upsert_records(session, [PaperRecord(title="Alpha")], source="x", now=T0)
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    with db.transaction(settings) as session:
        assert count_papers(session) == 0


def test_sqlite_uses_wal(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    with db.transaction(settings) as session:
        mode = session.connection().exec_driver_sql("PRAGMA journal_mode").scalar()
    assert mode == "wal"


@pytest.mark.real_migrations
def test_migrations_match_the_models(backend: str, make_settings: Callable[..., Settings]) -> None:
    """`digest db upgrade` builds exactly the schema the models describe."""
    engine = db.get_engine(make_settings())
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    assert db.current_revisions(engine) == db.head_revisions()
    assert len(db.head_revisions()) == 1  # one linear history


def test_one_of_asks_for_many_values_in_few_statements(
    backend: str, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``db.one_of``: on PostgreSQL one ``= ANY(array)`` whatever the count, elsewhere ``IN``
    lists of ``IN_CHUNK``; either way the union of its conditions is exactly the values
    asked for, integers and text alike, and no values ask nothing."""
    monkeypatch.setattr(db, "IN_CHUNK", 4)  # a size knob, not the logic
    settings = make_settings()
    records = [PaperRecord(title=f"Paper {n}", arxiv_id=f"2411.{n:05d}") for n in range(11)]
    with db.transaction(settings) as session:
        upsert_records(session, records, source="hf", now=T0)
        ids: dict[str, int] = {
            key: int(i) for key, i in session.execute(select(Paper.key, Paper.id))
        }
    wanted = sorted(ids)[1:10]  # nine of the eleven
    with db.transaction(settings) as session:
        by_key = list(db.one_of(session, col(Paper.key), wanted))
        found = [
            key for c in by_key for key in session.execute(select(Paper.key).where(c)).scalars()
        ]
        by_id = list(db.one_of(session, col(Paper.id), [ids[k] for k in wanted]))
        found_ids = [i for c in by_id for i in session.execute(select(Paper.id).where(c)).scalars()]
        assert list(db.one_of(session, col(Paper.id), [])) == []
    assert sorted(found) == wanted
    assert sorted(found_ids) == sorted(ids[k] for k in wanted)
    expected = 1 if backend == "postgres" else 3  # nine values in lists of four
    assert len(by_key) == len(by_id) == expected
