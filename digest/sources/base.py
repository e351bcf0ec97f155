"""The ``Source`` plug-point and what flows through it.

A source turns its definition, a cursor (where it stopped last time) and a fetch context
(the network, ``now``) into a sequence of :class:`Batch` values. Each batch is stored in one
transaction together with the cursor it carries, so a failure after batch N keeps batches
1…N and the cursor that matches them, and stores nothing of the failing payload.

A source raises :class:`~digest.errors.DigestError` subclasses for expected failures; the
fetcher records them on the source's run and goes on with the next source.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol

from digest.config.settings import Settings
from digest.config.sources import SourceSpec
from digest.sources.http import Http, Spacing
from digest.store.records import PaperRecord


@dataclass(frozen=True)
class Cursor:
    """Where a source stands between runs (kept in the ``source_state`` table)."""

    last_date: date | None = None  # hf_daily: last complete day
    etag: str | None = None  # feeds: validators for a conditional GET
    last_modified: str | None = None


@dataclass(frozen=True)
class Batch:
    """One payload's worth of papers, stored all-or-nothing with its cursor.

    ``records`` are announced: unknown papers become new, known ones are refreshed.
    ``refresh_only`` update papers already in the store (a new version, more upvotes) and
    are ignored when unknown: an arXiv replacement never makes an old paper "new".
    """

    label: str
    records: list[PaperRecord] = field(default_factory=list)
    refresh_only: list[PaperRecord] = field(default_factory=list)
    cursor: Cursor | None = None  # None: leave the stored cursor as it is
    notes: dict[str, object] = field(default_factory=dict)  # recorded on the run's details


@dataclass(frozen=True)
class FetchContext:
    """What a source may use: the network, the clock, the settings."""

    http: Http
    settings: Settings
    now: datetime
    arxiv_spacing: Spacing
    since: date | None = None  # overrides the start date of dated sources
    probe: bool = False  # `digest sources test`: one small request, no conditional GET

    @property
    def today(self) -> date:
        """The current UTC date: listings are dated in UTC."""
        return self.now.astimezone(UTC).date()


class Source(Protocol):
    """A listing source. Implementations: hf_daily, arxiv, feed, file."""

    spec: SourceSpec

    def fetch(self, ctx: FetchContext, cursor: Cursor) -> Iterator[Batch]:
        """Yield batches in order; raise a DigestError when the source fails."""
        ...
