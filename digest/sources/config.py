"""Which sources exist and where each one stands.

Definitions come from two places: ``[[sources]]`` in digest.toml (``settings.sources``,
read-only here) and ``digest sources add`` (the ``source`` table). A name lives in exactly
one of them. Per-source state (cursor, last success, last error) is the ``source_state``
table, keyed by name, whichever way the source is defined.

Functions take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlmodel import Session, col

from digest.config.settings import Settings
from digest.config.sources import SourceSpec, build_spec
from digest.errors import ConfigError
from digest.sources.base import Cursor
from digest.store.models import SourceDefinition, SourceState


@dataclass(frozen=True)
class SourceEntry:
    """A defined source and where its definition lives (``config`` or ``store``)."""

    spec: SourceSpec
    origin: str


def _spec_from_row(row: SourceDefinition) -> SourceSpec:
    return build_spec(**row.options, name=row.name, kind=row.kind, url=row.url)


def list_sources(session: Session, settings: Settings) -> list[SourceEntry]:
    """Every defined source: digest.toml's first, in file order, then the added ones by name."""
    entries: list[SourceEntry] = []
    names: dict[str, str] = {}
    rows = session.execute(select(SourceDefinition).order_by(col(SourceDefinition.name)))
    candidates = [SourceEntry(spec, "config") for spec in settings.sources] + [
        SourceEntry(_spec_from_row(row), "store") for row in rows.scalars()
    ]
    for entry in candidates:
        where = names.get(entry.spec.name)
        if where is not None:
            raise ConfigError(
                f"source {entry.spec.name!r} is defined twice ("
                + (
                    "in digest.toml"
                    if where == entry.origin == "config"
                    else "in digest.toml and by `digest sources add`: remove one"
                )
                + ")"
            )
        names[entry.spec.name] = entry.origin
        entries.append(entry)
    return entries


def select_sources(entries: list[SourceEntry], only: Collection[str] | None) -> list[SourceEntry]:
    """The sources to fetch: the named ones (enabled or not), else every enabled one."""
    if not only:
        return [entry for entry in entries if entry.spec.enabled]
    known = {entry.spec.name for entry in entries}
    unknown = [name for name in only if name not in known]
    if unknown:
        listed = ", ".join(sorted(known)) or "none are defined"
        raise ConfigError(f"unknown source {unknown[0]!r} (sources: {listed})")
    return [entry for entry in entries if entry.spec.name in only]


def find_source(session: Session, settings: Settings, name: str) -> SourceEntry:
    return select_sources(list_sources(session, settings), [name])[0]


def add_source(session: Session, settings: Settings, spec: SourceSpec, *, now: datetime) -> None:
    """Store a new definition; a name that exists anywhere is refused."""
    if any(entry.spec.name == spec.name for entry in list_sources(session, settings)):
        raise ConfigError(f"a source named {spec.name!r} already exists")
    session.add(
        SourceDefinition(
            name=spec.name,
            kind=spec.kind,
            url=spec.url,
            options=spec.options(),
            created_at=now,
        )
    )
    # A name reused after a removal starts afresh.
    session.execute(delete(SourceState).where(col(SourceState.name) == spec.name))
    session.flush()


def remove_source(session: Session, settings: Settings, name: str) -> None:
    """Delete an added source and its state; digest.toml's sources are edited in the file."""
    entry = find_source(session, settings, name)
    if entry.origin == "config":
        raise ConfigError(f"source {name!r} is defined in digest.toml: remove it there")
    session.execute(delete(SourceDefinition).where(col(SourceDefinition.name) == name))
    session.execute(delete(SourceState).where(col(SourceState.name) == name))


def source_states(session: Session) -> dict[str, SourceState]:
    return {state.name: state for state in session.execute(select(SourceState)).scalars()}


def _state(session: Session, name: str, now: datetime) -> SourceState:
    state = session.get(SourceState, name)
    if state is None:
        state = SourceState(name=name, updated_at=now)
        session.add(state)
    return state


def load_cursor(session: Session, name: str) -> Cursor:
    state = session.get(SourceState, name)
    if state is None:
        return Cursor()
    return Cursor(state.last_date, state.etag, state.last_modified)


def save_cursor(session: Session, name: str, cursor: Cursor, *, now: datetime) -> None:
    state = _state(session, name, now)
    state.last_date, state.etag, state.last_modified = (
        cursor.last_date,
        cursor.etag,
        cursor.last_modified,
    )
    state.updated_at = now
    session.flush()


def record_outcome(session: Session, name: str, *, error: str | None, now: datetime) -> None:
    """Remember the last success or the last error (cleared by the next success)."""
    state = _state(session, name, now)
    if error is None:
        state.last_success_at, state.last_error = now, None
    else:
        state.last_error_at, state.last_error = now, error
    state.updated_at = now
    session.flush()
