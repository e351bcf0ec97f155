"""``digest subscribers export`` / ``import``: subscribers with their tokens and history.

The document (``docs/subscriber-export.md`` describes it)::

    {"format": "paper-digest-subscribers", "version": 2, "exported_at": "…",
     "subscribers": [{"email": …, "status": …, "keywords": […], … preferences …,
                      "token": …, "created_at": …, "confirmed_at": …, "bounce_count": 0,
                      "digests": [{"period": "2026-W47", "status": "sent", …,
                                   "items": [{"paper": "arxiv:2411.01234", "rank": 1, …}]}]}],
     "papers": {"arxiv:2411.01234": {"title": …, "first_seen_at": …, …}}}

Preferences use the names of ``show --json`` (the declaration in
:mod:`digest.subscribers.fields`); tokens come back, so every feed URL and unsubscribe link
already mailed keeps working; finished digests and their papers come back, so nothing a
subscriber received is sent again. Version 1 (a bare list of subscribers, no tokens or
history) is still read. A newer version is refused, not half-read.

Importing is all-or-nothing: every entry is validated before anything is written, in one
transaction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlmodel import Session

from digest.config.settings import Settings
from digest.digests.history import (
    DigestData,
    PaperData,
    history_of,
    paper_data,
    paper_ids,
    restore_history,
    restore_papers,
)
from digest.errors import ProfileError
from digest.store import db
from digest.store.papers import count_papers
from digest.subscribers.feedback import parse_ratings, ratings_of, replace_ratings
from digest.subscribers.files import Entry, SyncResult, apply_entries, export_entry, read_entries
from digest.subscribers.library import get_subscriber, list_subscribers

log = logging.getLogger(__name__)
FORMAT = "paper-digest-subscribers"
VERSION = 2


def export_document(session: Session, *, now: datetime) -> dict[str, Any]:
    """Every subscriber with its token and finished digests, and the papers they name."""
    subscribers: list[dict[str, Any]] = []
    paper_ids: set[int] = set()
    for subscriber in list_subscribers(session):
        entry = export_entry(session, subscriber)
        digests, papers = history_of(session, subscriber)
        entry["digests"] = digests
        if ratings := ratings_of(session, subscriber):  # the reader's feedback, by paper key
            entry["ratings"] = [rating.as_dict() for rating in ratings]
        paper_ids |= papers
        subscribers.append(entry)
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": now.isoformat(),
        "subscribers": subscribers,
        "papers": paper_data(session, paper_ids),
    }


@dataclass(slots=True)
class ImportResult:
    """What an import did: subscribers added/updated/unchanged, history restored."""

    subscribers: SyncResult = field(default_factory=SyncResult)
    digests: int = 0
    items: int = 0
    papers: int = 0  # papers the store did not have
    ratings: int = 0  # the readers' ratings restored

    def summary(self) -> str:
        history = (
            f"; history: {self.digests} digest(s), {self.items} paper(s) delivered before"
            if self.digests or self.items
            else ""
        )
        return self.subscribers.summary() + history

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.subscribers.as_dict(),
            "digests": self.digests,
            "items": self.items,
            "papers": self.papers,
            "ratings": self.ratings,
        }


@dataclass(slots=True)
class Document:
    """A validated export: entries, each one's digests, the papers they name."""

    entries: list[Entry]
    digests: list[list[DigestData]]
    papers: list[PaperData]
    ratings: list[list[tuple[str, int, datetime | None]] | None] = field(default_factory=list)


def _model(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        inner = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
        )
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ProfileError(f"{where}{inner}: {message}") from None


def read_document(data: Any, where: str) -> Document:
    """Validate an export (version 1 or 2) completely; ProfileError names the place."""
    if isinstance(data, list):  # version 1: subscribers (and their ratings) only
        entries = read_entries(data, where, extra=("ratings",), account=True)
        return Document(entries, [[] for _ in data], [], _ratings(data, where))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProfileError(f"{where}: not a subscriber export of paper-digest")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ProfileError(f"{where}: version must be a whole number, not {version!r}")
    if version > VERSION:
        raise ProfileError(
            f"{where}: written by a newer paper-digest (export version {version}); "
            f"this one reads versions 1 to {VERSION}: upgrade it"
        )
    unknown = set(data) - {"format", "version", "exported_at", "subscribers", "papers"}
    if unknown:
        raise ProfileError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    items: list[dict[str, Any]] = data.get("subscribers")  # type: ignore[assignment]  # read_entries checks it is one
    entries = read_entries(
        items, f"{where}: subscribers", extra=("digests", "ratings"), account=True
    )
    digests = []
    for index, item in enumerate(items):
        place = f"{where}: subscribers[{index}].digests"
        raw = item.get("digests", [])
        if not isinstance(raw, list):
            raise ProfileError(f"{place}: expected a list")
        digests.append([_model(DigestData, d, f"{place}[{n}]") for n, d in enumerate(raw)])
    ratings = _ratings(items, f"{where}: subscribers")
    papers_in = data.get("papers", {})
    if not isinstance(papers_in, dict):
        raise ProfileError(f"{where}: papers: expected an object keyed by paper key")
    papers = []
    for key, paper in papers_in.items():
        parsed = _model(PaperData, paper, f"{where}: papers[{key!r}]")
        if parsed.key != key:
            raise ProfileError(f"{where}: papers[{key!r}]: its key is {parsed.key!r}")
        papers.append(parsed)
    return Document(entries, digests, papers, ratings)


def _ratings(
    items: list[dict[str, Any]], where: str
) -> list[list[tuple[str, int, datetime | None]] | None]:
    """Each entry's ratings, checked; None where an entry has none (its ratings are left
    as they are)."""
    out: list[list[tuple[str, int, datetime | None]] | None] = []
    for index, item in enumerate(items):
        try:
            out.append(parse_ratings(item["ratings"]) if "ratings" in item else None)
        except ProfileError as exc:
            raise ProfileError(f"{where}[{index}]: {exc}") from None
    return out


def apply_document(
    session: Session, document: Document, *, settings: Settings, now: datetime, update: bool
) -> ImportResult:
    """Write a validated document: subscribers (with tokens), then papers and history."""
    result = ImportResult()
    result.subscribers = apply_entries(
        session, document.entries, settings=settings, now=now, origin="import", update=update
    )
    named = {item.paper for digests in document.digests for d in digests for item in d.items}
    before = count_papers(session)
    ids = restore_papers(session, [p for p in document.papers if p.key in named])
    ids.update(paper_ids(session, named - set(ids)))
    missing = named - set(ids)
    if missing:
        raise ProfileError(
            f"a digest names paper {sorted(missing)[0]!r}, which is neither in the file's "
            "papers nor in the store"
        )
    result.papers = count_papers(session) - before
    for entry, digests in zip(document.entries, document.digests, strict=True):
        if digests:
            subscriber = get_subscriber(session, entry.email)
            restored = restore_history(session, subscriber, digests, ids)
            result.digests += restored.digests
            result.items += restored.items
    for entry, rated in zip(document.entries, document.ratings, strict=False):
        if rated is not None:
            subscriber = get_subscriber(session, entry.email)
            left_out = replace_ratings(session, subscriber, rated, now=now)
            result.ratings += len(rated) - len(left_out)
            if left_out:  # a paper neither in the file nor in this store: nothing to rate
                log.warning(
                    "%s: %d rated paper(s) not in this store, left out (e.g. %s)",
                    entry.email,
                    len(left_out),
                    left_out[0],
                )
    return result


def export_all(settings: Settings, *, now: datetime) -> dict[str, Any]:
    """``digest subscribers export``: the document, read in one read-only transaction."""
    with db.reading(settings) as session:
        return export_document(session, now=now)


def import_file(settings: Settings, path: Path, *, update: bool, now: datetime) -> ImportResult:
    """``digest subscribers import``: validate the whole file, then write it in one
    transaction (all or nothing)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ProfileError(f"{path}: cannot read: {reason}") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path}: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    document = read_document(data, str(path))
    with db.transaction(settings) as session:
        return apply_document(session, document, settings=settings, now=now, update=update)
