"""Feeds out of the store as bytes: ``digest feed`` (one feed) and ``digest feeds export DIR``.

The export writes static copies of the feeds the web app serves, for a static host that
serves ``DIR`` at ``<DIGEST_BASE_URL>/feeds/``: each active or paused subscriber's
``<token>.atom|rss|json`` and, when ``DIGEST_PUBLIC_FEED`` is on, ``all.atom|rss|json``. It
writes only what changed since the last export to ``DIR``: a feed changes exactly when its
ETag does (:mod:`digest.render.feed_state`): a digest of the subscriber is sent, a paper in
the feed is refreshed, the name or keywords shown in the title or subtitle change, the base
URL or site name change. A subscriber who unsubscribed, went back to pending or was removed
loses their files (the web app answers 410 or 404 for them).

State lives in ``DIR`` itself, in ``.paper-digest-feeds.json``: for every feed written, the
ETag and size of each file. Beside the files it describes, it survives what happens to them
(a copied, restored or wiped directory simply rewrites what is missing or different), and it
needs no write to the store, so an export never holds a write lock on SQLite while a run
delivers. Files are checked against it by size on every export, so a file deleted or cut
short by hand or by a crash of the machine is rewritten.

Crash safety: each file is written to ``.NAME.partial`` and renamed over ``NAME`` (atomic on
POSIX file systems), so a reader sees the old file or the new one, never half of one. The
manifest is replaced the same way (and fsynced) at checkpoints, every couple of seconds and
at the end, always after the files it lists were renamed: an export killed midway leaves
files newer than its manifest says, and the next export rewrites those and finishes the job.
Leftover ``.partial`` files are removed at the start. Concurrent exports to one directory are
serialized by an exclusive ``flock`` on ``.paper-digest-feeds.lock``: a second one stops with
an error instead of interleaving manifests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import Session, col

from digest.errors import DigestError
from digest.render.assemble import ViewOptions
from digest.render.feed_state import FORMATS, read_head, read_public_head
from digest.render.feed_views import H, build_public_view, build_view, settled_view
from digest.render.feeds import FEED_FORMATS
from digest.render.views import FeedView
from digest.store import db
from digest.store.models import Subscriber
from digest.subscribers.library import get_subscriber

if TYPE_CHECKING:
    from digest.config.settings import Settings

MANIFEST = ".paper-digest-feeds.json"
LOCK = ".paper-digest-feeds.lock"
PARTIAL = ".partial"
PUBLIC = "all"
EXPORTED_STATUSES = ("active", "paused")  # what the web app serves with a 200
CHECKPOINT_SECONDS = 2.0
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a token (urlsafe base64) or "all"
FORMATS_SET = frozenset(FORMATS)


def _well_formed(name: str, entry: object) -> bool:
    """A manifest entry as this module writes it: ``{format: [etag, size]}``."""
    return (
        _NAME.fullmatch(name) is not None
        and isinstance(entry, dict)
        and entry.keys() <= FORMATS_SET
        and all(
            isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)
            for v in entry.values()
        )
    )


def subscriber_feed(settings: Settings, email: str, *, fmt: str) -> bytes:
    """``digest feed``: a subscriber's personal feed in ``fmt`` (atom, rss or json)."""
    if fmt not in FEED_FORMATS:
        raise DigestError(f"unknown feed format {fmt!r}: use atom, rss or json")
    options = ViewOptions.from_settings(settings)
    with db.reading(settings) as session:
        subscriber = get_subscriber(session, email)
        head = read_head(
            session.connection(), subscriber_id=subscriber.id, limit=options.feed_items
        )
        assert head is not None  # found just above, in the same transaction
        return FEED_FORMATS[fmt](build_view(session, head, options=options, fmt=fmt))


@dataclass(slots=True)
class ExportReport:
    """What one export did, counted in files (three per feed)."""

    directory: Path
    feeds: int = 0  # feeds considered: subscribers exported, plus the public feed
    written: int = 0
    unchanged: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "directory": str(self.directory)}


class _Manifest:
    """``{feed name: {format: [etag, size]}}``, checkpointed atomically into ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / MANIFEST
        self.feeds: dict[str, dict[str, list[Any]]] = {}
        self._saved_at = time.monotonic()
        try:
            document = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError):  # unreadable: start over, every file gets rewritten
            return
        found = document.get("feeds") if isinstance(document, dict) else None
        for name, entry in (found if isinstance(found, dict) else {}).items():
            # Only what this module writes: a feed name that is a plain file name, and
            # [etag, size] per format. Anything else is forgotten (its files rewritten).
            if _well_formed(name, entry):
                self.feeds[name] = entry

    def current(self, directory: Path, name: str, etags: dict[str, str]) -> bool:
        """Whether every file of ``name`` is on disk as the manifest says, at ``etags``."""
        entry = self.feeds.get(name, {})
        for fmt, etag in etags.items():
            recorded = entry.get(fmt)
            if not recorded or recorded[0] != etag:
                return False
            try:
                if (directory / f"{name}.{fmt}").stat().st_size != recorded[1]:
                    return False
            except FileNotFoundError:
                return False
        return True

    def save(self) -> None:
        data = json.dumps({"version": 1, "feeds": self.feeds}, separators=(",", ":"))
        _replace(self.path, data.encode("utf-8"), sync=True)
        self._saved_at = time.monotonic()

    def checkpoint(self, every: float) -> bool:
        if time.monotonic() - self._saved_at >= every:
            self.save()
            return True
        return False


def _replace(target: Path, data: bytes, *, sync: bool = False) -> None:
    """Write ``target`` whole or not at all: a ``.partial`` sibling renamed over it."""
    partial = target.with_name(f".{target.name}{PARTIAL}")
    with partial.open("wb") as handle:
        handle.write(data)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    partial.replace(target)
    if sync:  # the rename itself, on the directory
        descriptor = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    with (directory / LOCK).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DigestError(f"another `digest feeds export` is writing to {directory}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class _Export:
    """One export's working state."""

    session: Session
    directory: Path
    manifest: _Manifest
    options: ViewOptions
    everything: bool
    report: ExportReport

    def feed(
        self,
        read: Callable[[], H | None],
        build: Callable[[Session, H, str], FeedView],
        name: Callable[[H], str],
    ) -> None:
        """Write the three files of one feed unless the manifest says they are current."""
        head = read()
        if head is None:  # removed since the list was read
            return
        etags = {fmt: head.etag(self.options, fmt) for fmt in FORMATS}
        if not self.everything and self.manifest.current(self.directory, name(head), etags):
            self.report.unchanged += len(FORMATS)
            return
        settled = settled_view(
            self.session, head, read=read, build=lambda s, h: build(s, h, FORMATS[0])
        )
        if settled is None:
            return
        head, view = settled
        entry: dict[str, list[Any]] = {}
        for fmt in FORMATS:
            self_url = head.header(self.options, fmt).self_url  # the three differ only there
            data = FEED_FORMATS[fmt](dataclasses.replace(view, self_url=self_url))
            _replace(self.directory / f"{name(head)}.{fmt}", data)
            entry[fmt] = [head.etag(self.options, fmt), len(data)]
        self.manifest.feeds[name(head)] = entry  # only once every file is in place
        self.report.written += len(FORMATS)

    def delete(self, name: str) -> None:
        for fmt in self.manifest.feeds[name]:
            (self.directory / f"{name}.{fmt}").unlink(missing_ok=True)
        del self.manifest.feeds[name]  # only once the files are gone
        self.report.deleted += len(FORMATS)


def export_feeds(
    settings: Settings,
    directory: Path,
    *,
    everything: bool = False,
    checkpoint_every: float = CHECKPOINT_SECONDS,
) -> ExportReport:
    """Write the feeds that changed since the last export to ``directory`` (all with
    ``everything``), delete those of subscribers no longer served; see the module doc."""
    report = ExportReport(directory=directory.resolve())
    options = ViewOptions.from_settings(settings)
    engine = db.read_engine(settings)  # reads only: never creates or migrates a store
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with _exclusive(directory), Session(engine) as session:
            for leftover in directory.glob(f".*{PARTIAL}"):
                leftover.unlink(missing_ok=True)
            manifest = _Manifest(directory)
            export = _Export(session, directory, manifest, options, everything, report)
            try:
                _export_all(export, settings, checkpoint_every)
            except BaseException:  # record what was done, if the disk still lets us
                with contextlib.suppress(OSError):
                    manifest.save()
                raise
            manifest.save()
    except OSError as exc:
        raise DigestError(f"cannot write feeds to {directory}: {exc.strerror or exc}") from None
    return report


def _export_all(export: _Export, settings: Settings, checkpoint_every: float) -> None:
    session, report, options = export.session, export.report, export.options
    limit = options.feed_items
    statement = (
        select(col(Subscriber.id), col(Subscriber.token))
        .where(col(Subscriber.status).in_(EXPORTED_STATUSES))
        .order_by(col(Subscriber.id))
    )
    served = {PUBLIC} if settings.public_feed else set()
    for subscriber_id, token in session.execute(statement).all():
        served.add(token)
        report.feeds += 1
        export.feed(
            functools.partial(
                read_head, session.connection(), subscriber_id=subscriber_id, limit=limit
            ),
            lambda s, h, fmt: build_view(s, h, options=options, fmt=fmt),
            lambda h: h.token,
        )
        if export.manifest.checkpoint(checkpoint_every):
            session.rollback()  # no snapshot held for the whole export (PostgreSQL)
    if settings.public_feed:
        report.feeds += 1
        export.feed(
            functools.partial(read_public_head, session.connection(), limit=limit),
            lambda s, h, fmt: build_public_view(s, h, options=options, fmt=fmt),
            lambda _h: PUBLIC,
        )
    for name in sorted(set(export.manifest.feeds) - served):
        export.delete(name)
