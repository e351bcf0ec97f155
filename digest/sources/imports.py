"""``digest import``: listing files into the store, one transaction per file. An entry point.

A file is parsed completely before anything is written, so a malformed file stores nothing;
the other files still import. Every file is a recorded run, whatever happens to it: a
malformed file is its one-line ListingError; an unexpected exception while reading or
storing one file (a parser bug) is logged with its traceback, recorded as that file's
"internal error" and does not stop the others.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from digest.config.settings import Settings
from digest.errors import DigestError
from digest.parsers import read_listing_file
from digest.parsers.common import one_line
from digest.parsers.limits import cut
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
    capped: dict[str, int] = field(default_factory=dict)  # field → records cut to the limits
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


log = logging.getLogger(__name__)
# The run's source column holds 500 characters, a paper's first source 200.
_RUN_SOURCE_CHARS = 500
_PAPER_SOURCE_CHARS = 200


def _label(path: Path, limit: int) -> str:
    """A path as one storable line: undecodable bytes in file names shown as U+FFFD, the
    end of an overlong path kept (it names the file)."""
    text = one_line(str(path), limit=len(str(path)) + 1)
    return text if len(text) <= limit else "…" + text[len(text) - limit + 1 :]


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
        result = FileResult(path=_label(path, _RUN_SOURCE_CHARS))
        with recorded_run(engine, kind="import", source=result.path, started_at=now) as run:
            progress(str(path), 0, 0)
            try:
                _import_one(
                    engine,
                    path,
                    result,
                    fmt=fmt,
                    now=now,
                    max_bytes=settings.max_listing_bytes,
                    source=source,
                    on_progress=functools.partial(progress, str(path)),
                )
            except DigestError as exc:
                result.error = str(exc)
            except OSError as exc:
                result.error = f"{result.path}: {exc.strerror or exc}"
            except Exception as exc:
                # A bug must not cost the other files their import: the file's run and the
                # command say so in one line, the traceback goes to the debug log.
                log.debug("importing %s failed unexpectedly", result.path, exc_info=True)
                result.error = one_line(
                    f"{result.path}: internal error (a bug; DIGEST_LOG_LEVEL=DEBUG logs the "
                    f"traceback): {type(exc).__name__}: {exc}"
                )
            if result.error:  # nothing of the file was stored
                result.new = result.seen = result.updated = 0
                run.fail(result.error)
            run.new, run.seen = result.new, result.seen
            run.details = {"format": result.format, "records": result.records}
            if result.capped:
                run.details["capped"] = result.capped
        report.files.append(result)
        if on_file:
            on_file(result)
    return report


def _import_one(
    engine: Engine,
    path: Path,
    result: FileResult,
    *,
    fmt: str,
    now: datetime,
    max_bytes: int,
    source: str | None,
    on_progress: Callable[[int, int], None],
) -> None:
    listing = read_listing_file(path, fmt=fmt, max_bytes=max_bytes, now=now)
    result.format, result.records, result.capped = (
        listing.format,
        len(listing.records),
        listing.capped,
    )
    label = cut(source, _PAPER_SOURCE_CHARS) if source else f"file:{_label(Path(path.name), 195)}"
    with db.transaction(engine) as session:
        outcome = upsert_records(
            session, listing.records, source=label, now=now, on_progress=on_progress
        )
    result.new, result.seen, result.updated = outcome.new, outcome.seen, outcome.updated
