"""``digest sources test``: one small request to a source, parsed, nothing stored.

hf_daily asks for the first page of today, arxiv and feed fetch their listing without a
conditional GET, file reads its file. Failures raise, so the CLI prints the one-line reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from digest.config.settings import Settings
from digest.errors import StoreMissingError
from digest.sources.base import Cursor
from digest.sources.config import SourceEntry, find_source
from digest.sources.fetcher import SOURCE_TYPES, make_context
from digest.sources.http import Sleep, make_client
from digest.store import db

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ProbeReport:
    """What a source answered to one request."""

    name: str
    kind: str
    url: str
    origin: str
    papers: int = 0
    label: str = ""
    titles: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "origin": self.origin,
            "papers": self.papers,
            "label": self.label,
            "titles": self.titles,
        }


def _find(settings: Settings, name: str) -> SourceEntry:
    """The source ``name``; without a store, digest.toml's sources still can be tried."""
    try:
        with db.reading(settings) as session:
            return find_source(session, settings, name)
    except StoreMissingError:
        for spec in settings.sources:
            if spec.name == name:
                return SourceEntry(spec, "config")
        raise


def probe_source(
    settings: Settings,
    name: str,
    *,
    now: datetime,
    client: httpx.Client | None = None,
    sleep: Sleep = time.sleep,
    sample: int = 5,
) -> ProbeReport:
    """Fetch and parse the first payload of source ``name``; store nothing."""
    entry = _find(settings, name)
    spec = entry.spec
    report = ProbeReport(spec.name, spec.kind, spec.resolved_url, entry.origin)
    log.info("testing %s (%s): %s", spec.name, spec.kind, spec.resolved_url)
    http_client = make_client(settings) if client is None else client
    try:
        ctx = make_context(settings, http_client, now=now, probe=True, sleep=sleep)
        # In probe mode every source yields a single batch.
        batch = next(SOURCE_TYPES[spec.kind](spec).fetch(ctx, Cursor()), None)
    finally:
        if client is None:
            http_client.close()
    if batch is not None:
        records = [*batch.records, *batch.refresh_only]
        report.papers, report.label = len(records), batch.label
        report.titles = [record.title for record in records[:sample]]
    return report
