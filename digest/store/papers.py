"""Papers in the store: the diff (new vs seen), sightings, in-place updates of mutable facts.

"New" is decided by one ``INSERT … ON CONFLICT (key) DO NOTHING … RETURNING`` per batch:
the keys that come back are the new papers. Everything else was seen before; its mutable
facts (upvotes, version, code link, stars) are refreshed in place and it is never announced
again. Functions here take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from digest.store.models import Paper, Sighting
from digest.store.records import PaperRecord

# SQLite allows 32,766 bound parameters per statement; ~25 columns per row.
_BATCH = 500


@dataclass(slots=True)
class UpsertResult:
    """What one batch of records did to the store."""

    new_keys: list[str] = field(default_factory=list)
    seen: int = 0  # records whose paper was already known (incl. repeats within the batch)
    updated: int = 0  # known papers whose mutable facts changed

    @property
    def new(self) -> int:
        return len(self.new_keys)


def dialect_insert(session: Session) -> Any:
    """The dialect's ``insert`` (SQLite or PostgreSQL): both have ON CONFLICT and RETURNING."""
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert


def merge_records(records: Iterable[PaperRecord]) -> dict[str, PaperRecord]:
    """One record per canonical key; a later record fills what an earlier one lacked."""
    merged: dict[str, PaperRecord] = {}
    for record in records:
        previous = merged.get(record.key)
        merged[record.key] = record if previous is None else _fill(previous, record)
    return merged


def _fill(base: PaperRecord, other: PaperRecord) -> PaperRecord:
    updates: dict[str, Any] = {}
    for f in fields(base):
        mine, theirs = getattr(base, f.name), getattr(other, f.name)
        if f.name in ("upvotes", "github_stars", "version", "comments"):
            if theirs is not None and (mine is None or theirs > mine):
                updates[f.name] = theirs
        elif not mine and theirs:
            updates[f.name] = theirs
    return replace(base, **updates) if updates else base


def _row(record: PaperRecord, *, source: str, now: datetime) -> dict[str, Any]:
    return {
        "key": record.key,
        "arxiv_id": record.arxiv_id,
        "doi": record.doi,
        "title": record.title,
        "abstract": record.abstract,
        "authors": list(record.authors),
        "categories": list(record.categories),
        "keywords": list(record.keywords),
        "url": record.url,
        "pdf_url": record.pdf_url,
        "published_at": record.published,
        "listed_at": record.listed_at,
        "version": record.version,
        "upvotes": record.upvotes,
        "github_repo": record.github_repo,
        "github_stars": record.github_stars,
        "project_page": record.project_page,
        "thumbnail": record.thumbnail,
        "ai_summary": record.ai_summary,
        "first_source": source,
        "first_seen_at": now,
        "updated_at": now,
    }


def _refresh(paper: Paper, record: PaperRecord, now: datetime) -> bool:
    """Update mutable facts in place; fill gaps. Never touches first_seen_at (no re-announce)."""
    changed = False

    def set_(name: str, value: Any) -> None:
        nonlocal changed
        if value is not None and getattr(paper, name) != value:
            setattr(paper, name, value)
            changed = True

    if record.upvotes is not None and (paper.upvotes is None or record.upvotes != paper.upvotes):
        set_("upvotes", record.upvotes)
    if record.version is not None and (paper.version is None or record.version > paper.version):
        set_("version", record.version)
    set_("github_repo", record.github_repo)
    set_("github_stars", record.github_stars)
    set_("project_page", record.project_page)
    for name, value in (
        ("abstract", record.abstract),
        ("url", record.url),
        ("pdf_url", record.pdf_url),
        ("thumbnail", record.thumbnail),
        ("ai_summary", record.ai_summary),
        ("published_at", record.published),
        ("listed_at", record.listed_at),
        ("doi", record.doi),
    ):
        if not getattr(paper, name) and value:
            set_(name, value)
    for name, values in (
        ("authors", record.authors),
        ("categories", record.categories),
        ("keywords", record.keywords),
    ):
        if not getattr(paper, name) and values:
            set_(name, list(values))
    if changed:
        paper.updated_at = now
    return changed


Progress = Callable[[int, int], None]  # (steps done, steps in all)


def upsert_records(
    session: Session,
    records: Sequence[PaperRecord],
    *,
    source: str,
    now: datetime,
    on_progress: Progress | None = None,
) -> UpsertResult:
    """Store a listing's records: insert new papers, refresh known ones, record sightings.

    ``on_progress`` hears about every batch: two steps per distinct paper (stored, sighted).
    """
    result = UpsertResult()
    merged = merge_records(records)
    steps = 2 * len(merged)
    report = on_progress or (lambda _done, _total: None)
    result.seen = len(records) - len(merged)  # repeats inside the batch
    insert = dialect_insert(session)
    keys = list(merged)
    for start in range(0, len(keys), _BATCH):
        chunk = keys[start : start + _BATCH]
        statement = (
            insert(Paper)
            .values([_row(merged[key], source=source, now=now) for key in chunk])
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(col(Paper.key))
        )
        inserted = set(session.execute(statement).scalars())
        result.new_keys.extend(key for key in chunk if key in inserted)
        known = [key for key in chunk if key not in inserted]
        result.seen += len(known)
        if known:
            rows = session.execute(select(Paper).where(col(Paper.key).in_(known))).scalars()
            for paper in rows:
                result.updated += _refresh(paper, merged[paper.key], now)
        report(start + len(chunk), steps)
    session.flush()
    _record_sightings(
        session,
        merged,
        source=source,
        now=now,
        on_batch=lambda done: report(len(merged) + done, steps),
    )
    return result


def _record_sightings(
    session: Session,
    merged: dict[str, PaperRecord],
    *,
    source: str,
    now: datetime,
    on_batch: Callable[[int], None],
) -> None:
    insert = dialect_insert(session)
    keys = list(merged)
    for start in range(0, len(keys), _BATCH):
        chunk = keys[start : start + _BATCH]
        found = session.execute(
            select(col(Paper.key), col(Paper.id)).where(col(Paper.key).in_(chunk))
        )
        ids: dict[str, int] = {key: paper_id for key, paper_id in found}  # noqa: C416 - Row to pair
        rows = [
            {
                "paper_id": ids[key],
                "source": source,
                "external_id": merged[key].external_id,
                "version": merged[key].version,
                "first_seen_at": now,
                "last_seen_at": now,
                "times_seen": 1,
            }
            for key in chunk
        ]
        statement = insert(Sighting).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=["paper_id", "source"],
            set_={
                "last_seen_at": statement.excluded.last_seen_at,
                "times_seen": col(Sighting.times_seen) + 1,
                "version": func.coalesce(statement.excluded.version, col(Sighting.version)),
                "external_id": func.coalesce(
                    statement.excluded.external_id, col(Sighting.external_id)
                ),
            },
        )
        session.execute(statement)
        on_batch(start + len(chunk))


def count_papers(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Paper)).scalar_one())


def papers_first_seen_between(session: Session, start: datetime, end: datetime) -> list[Paper]:
    """Papers first seen in (start, end], oldest first: the candidates of a digest window."""
    statement = (
        select(Paper)
        .where(col(Paper.first_seen_at) > start, col(Paper.first_seen_at) <= end)
        .order_by(col(Paper.first_seen_at), col(Paper.id))
    )
    return list(session.execute(statement).scalars())
