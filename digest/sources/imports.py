"""``digest import``: listing files into the store, one transaction per file. An entry point.

A file is parsed completely before anything is written, so a malformed file stores nothing;
the other files still import. Every file is a recorded run.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from digest.config.settings import Settings
from digest.errors import DigestError
from digest.parsers import read_listing_file
from digest.store import db
from digest.store.papers import upsert_records
from digest.store.runs import recorded_run


@dataclass(slots=True)
class FileResult:
    path: str
    format: str | None = None
    records: int = 0
    new: int = 0
    seen: int = 0
    updated: int = 0
    error: str | None = None


@dataclass(slots=True)
class ImportReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def new(self) -> int:
        return sum(f.new for f in self.files)

    @property
    def seen(self) -> int:
        return sum(f.seen for f in self.files)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.error]

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "seen": self.seen,
            "errors": len(self.errors),
            "files": [dataclasses.asdict(f) for f in self.files],
        }


def import_files(
    settings: Settings,
    paths: Sequence[Path],
    *,
    fmt: str = "auto",
    now: datetime,
    source: str | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> ImportReport:
    """Import each file; a failing file is reported and skipped, never partly stored.

    ``on_progress(path, done, total)`` hears each file's progress: ``total`` 0 while it is
    read and parsed, then steps of storing its papers (two per paper) as they are done.
    """
    progress = on_progress or (lambda _path, _done, _total: None)
    engine = db.get_engine(settings)
    report = ImportReport()
    for path in paths:
        result = FileResult(path=str(path))
        with recorded_run(engine, kind="import", source=str(path), started_at=now) as run:
            progress(str(path), 0, 0)
            try:
                listing = read_listing_file(
                    path, fmt=fmt, max_bytes=settings.max_listing_bytes, now=now
                )
            except DigestError as exc:
                result.error = str(exc)
            except OSError as exc:
                result.error = f"{path}: {exc.strerror or exc}"
            else:
                result.format, result.records = listing.format, len(listing.records)
                with db.transaction(engine) as session:
                    outcome = upsert_records(
                        session,
                        listing.records,
                        source=source or f"file:{path.name}",
                        now=now,
                        on_progress=functools.partial(progress, str(path)),
                    )
                result.new, result.seen, result.updated = outcome.new, outcome.seen, outcome.updated
            run.new, run.seen = result.new, result.seen
            run.details = {"format": result.format, "records": result.records}
            if result.error:
                run.fail(result.error)
        report.files.append(result)
        if on_file:
            on_file(result)
    return report
