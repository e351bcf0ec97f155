"""What the feed routes keep in memory (rendered feeds) and how they read the store.

:class:`RenderedFeeds` holds the bytes of the last rendered version of each feed (per
subscriber and format, with the ETag they were rendered for), least recently used out first,
bounded in bytes. A feed's ETag is derived from its head (:mod:`digest.render.feed_state`), so
an entry is current exactly when its ETag equals the head's: no expiry, no invalidation
messages between processes.

:class:`FeedService` is what the routes call: the head of a feed (one statement) and its
bytes (the cache, or a build checked against the head).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from digest.render.assemble import ViewOptions
from digest.render.feed_state import FeedHead, PublicHead, read_head, read_public_head
from digest.render.feed_views import H, build_public_view, build_view, settled_view
from digest.render.feeds import FEED_FORMATS
from digest.render.views import FeedView

CACHE_BYTES = 64 * 1024 * 1024  # rendered feeds kept per process (about 650 feeds of 100 KB)
PUBLIC = 0  # the public feed's key (subscriber ids start at 1)


class RenderedFeeds:
    """Feed bytes by (subscriber id or :data:`PUBLIC`, format): the last ETag and its bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[int, str], tuple[str, bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._size

    def get(self, key: tuple[int, str], etag: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != etag:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: tuple[int, str], etag: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= len(old[1])
            self._entries[key] = (etag, data)
            self._size += len(data)
            while self._size > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._size -= len(evicted)


@dataclass
class FeedService:
    """Heads and bytes of the feeds of one store, for the web routes."""

    engine: Engine
    options: ViewOptions
    rendered: RenderedFeeds = field(default_factory=RenderedFeeds)

    @property
    def reads_inline(self) -> bool:
        """Whether a head is read on the event loop: a SQLite read is in-process CPU work
        shorter than a hop to the thread pool; a PostgreSQL read waits on the network."""
        return self.engine.dialect.name == "sqlite"

    @staticmethod
    def key(head: FeedHead | PublicHead) -> int:
        """The cache key of the feed's owner (:data:`PUBLIC` for the public feed)."""
        return head.subscriber_id if isinstance(head, FeedHead) else PUBLIC

    def _connect(self) -> Connection:
        connection = self.engine.connect()
        if not self.reads_inline:
            # PostgreSQL: one statement needs no transaction of its own, and psycopg drops
            # its prepared statements on every rollback (the pool resets each connection it
            # gets back with one): in autocommit the head's statement stays prepared.
            connection.execution_options(isolation_level="AUTOCOMMIT")
        return connection

    def head(self, token: str) -> FeedHead | None:
        with self._connect() as connection:
            return read_head(connection, token=token, limit=self.options.feed_items)

    def public_head(self) -> PublicHead:
        with self._connect() as connection:
            return read_public_head(connection, limit=self.options.feed_items)

    def feed_bytes(self, head: FeedHead, fmt: str) -> tuple[FeedHead, bytes] | None:
        """The subscriber's feed as of ``head``, or of a newer head when the store changed
        meanwhile (with that head); None when the subscriber vanished meanwhile."""

        def read() -> FeedHead | None:
            return self.head(head.token)

        def build(session: Session, current: FeedHead) -> FeedView:
            return build_view(session, current, options=self.options, fmt=fmt)

        return self._bytes(head.subscriber_id, head, fmt, read, build)

    def public_bytes(self, head: PublicHead, fmt: str) -> tuple[PublicHead, bytes]:
        def build(session: Session, current: PublicHead) -> FeedView:
            return build_public_view(session, current, options=self.options, fmt=fmt)

        found = self._bytes(PUBLIC, head, fmt, self.public_head, build)
        assert found is not None  # the public feed never vanishes
        return found

    def _bytes(
        self,
        key: int,
        head: H,
        fmt: str,
        read: Callable[[], H | None],
        build: Callable[[Session, H], FeedView],
    ) -> tuple[H, bytes] | None:
        data = self.rendered.get((key, fmt), head.etag(self.options, fmt))
        if data is not None:
            return head, data
        with Session(self.engine) as session:
            settled = settled_view(session, head, read=read, build=build)
        if settled is None:
            return None
        head, view = settled
        data = FEED_FORMATS[fmt](view)
        self.rendered.put((key, fmt), head.etag(self.options, fmt), data)
        return head, data
