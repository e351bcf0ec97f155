"""What a feed's bytes depend on (its head) and its ETag, read from the store.

A personal feed is a pure function of

- the settings it shows (base URL, site name) and the renderers' own version;
- the subscriber's token (its URLs and opaque id), name or address (title), keywords
  (subtitle) and when they subscribed (the ``updated`` of a feed with no items yet);
- its window: the newest ``feed_items`` items of the subscriber's *sent* digests in feed
  order (digest ``sent_at``, digest id, rank), each with its paper's ``updated_at``.

Digest items never change once recorded, a sent digest stays sent (and keeps its
``sent_at``), and every in-place refresh of a paper's facts (upvotes, code link, a filled-in
abstract) moves its ``updated_at`` (:mod:`digest.store.papers`). So the window's
``digest id:paper id:paper updated_at`` triples identify its items exactly, and a
:class:`FeedHead` (those triples, the subscriber's fields, the keywords) identifies the
bytes: :meth:`FeedHead.etag` hashes it with the format. The ETag changes exactly when the
bytes do, and a conditional GET is answered without building anything, from one statement:
the subscriber by token, their keywords, and the window aggregated by the database, walked
through the ``ix_digest_feed`` / ``ix_digest_item_feed`` indexes (their order is the feed
order: no sort, at most ``feed_items`` rows, however long the subscriber's history).

The public feed (``/feeds/all.*``: every paper, newest first) has a head too, over the
newest papers. :mod:`digest.render.feed_views` builds the views of heads. Functions take a
connection and never commit.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from digest import __version__
from digest.render.assemble import ViewOptions
from digest.render.display import subscriber_feed_id
from digest.render.views import FeedView
from digest.store.types import UTCDateTime
from digest.subscribers.links import links_for

FORMATS = ("atom", "rss", "json")
# Bump when the renderers' output changes for the same inputs: ETags (and exported files)
# must change with the bytes. The package and feedgen versions are part of it too.
RENDERING = "2"  # 2: feedback links in entries
# "updated" of a public feed before the store has any paper or run: it never changed.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)

# Statements, in the driver's own SQL ("?" becomes its placeholder; AGG its string
# aggregate). ORDER BY in the windows is the index order of ix_digest_feed (subscriber_id,
# status, sent_at, id) then ix_digest_item_feed (digest_id, rank, paper_id).
_HEAD = (
    "SELECT s.id, s.token, s.status, s.name, s.email, s.created_at, s.confirmed_at,"
    " (SELECT JSON_AGG(JSON_ARRAY(k.position, k.weight, k.text)) FROM interest k"
    "  WHERE k.subscriber_id = s.id AND k.kind = 'keyword') AS keywords,"
    " w.n, w.newest, w.triples"
    " FROM subscriber s, ("
    "  SELECT count(*) AS n, max(win.sent_at) AS newest, STRING_AGG(win.triple, ' ') AS triples"
    "  FROM ("
    "   SELECT d.sent_at, CAST(d.id AS TEXT) || ':' || CAST(i.paper_id AS TEXT)"
    "    || ':' || CAST(p.updated_at AS TEXT) AS triple"
    "   FROM subscriber s2 JOIN digest d ON d.subscriber_id = s2.id"
    "   JOIN digest_item i ON i.digest_id = d.id JOIN paper p ON p.id = i.paper_id"
    "   WHERE s2.KEY = ? AND d.status = 'sent'"
    "   ORDER BY d.sent_at DESC, d.id DESC, i.rank LIMIT ?"
    "  ) AS win"
    " ) AS w"
    " WHERE s.KEY = ?"
)
_STATEMENTS = {
    "head_token": _HEAD.replace("KEY", "token"),
    "head_id": _HEAD.replace("KEY", "id"),
    "window": "SELECT d.id, d.sent_at, i.paper_id FROM digest d"
    " JOIN digest_item i ON i.digest_id = d.id WHERE d.subscriber_id = ? AND d.status = 'sent'"
    " ORDER BY d.sent_at DESC, d.id DESC, i.rank LIMIT ?",
    "public_head": "SELECT count(*), max(first_seen_at),"
    " STRING_AGG(CAST(id AS TEXT) || ':' || CAST(updated_at AS TEXT), ' ')"
    " FROM (SELECT id, first_seen_at, updated_at FROM paper"
    " ORDER BY first_seen_at DESC, id DESC LIMIT ?) AS win",
    "public_window": "SELECT id, first_seen_at FROM paper"
    " ORDER BY first_seen_at DESC, id DESC LIMIT ?",
    "first_run": "SELECT min(started_at) FROM run",
}
_DIALECTS = {  # placeholder, then the functions' names
    "sqlite": {
        "?": "?",
        "STRING_AGG(": "group_concat(",
        "JSON_AGG(": "json_group_array(",
        "JSON_ARRAY(": "json_array(",
    },
    "postgresql": {
        "?": "%s",
        "STRING_AGG(": "string_agg(",
        "JSON_AGG(": "json_agg(",
        "JSON_ARRAY(": "json_build_array(",
    },
}
_UTC = UTCDateTime()


@functools.cache
def rendering_version() -> str:
    """What besides the inputs decides the bytes: our renderers and feedgen."""
    return f"{RENDERING}/{__version__}/feedgen-{importlib.metadata.version('feedgen')}"


@functools.cache
def _driver_statements(dialect: str) -> dict[str, str]:
    statements = dict(_STATEMENTS)
    for generic, own in _DIALECTS[dialect].items():
        statements = {name: sql.replace(generic, own) for name, sql in statements.items()}
    return statements


def query(connection: Connection, name: str, *params: object) -> list[Any]:
    """Rows of one of the statements above, through the driver's own cursor.

    A head is read on every conditional GET: the Core layer's per-statement work (compiling,
    result metadata, row objects) would cost more than the indexed lookup itself."""
    sql = _driver_statements(connection.dialect.name)[name]
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, params)
        rows: list[Any] = list(cursor.fetchall())
    finally:
        cursor.close()
    return rows


def to_utc(connection: Connection, value: Any) -> datetime:
    parsed = _UTC.process_result_value(value, connection.dialect)
    assert parsed is not None
    return parsed


def _fingerprint(parts: tuple[object, ...]) -> str:
    """A hash of plain values (str, int, None, tuples of them): their ``repr`` is exact."""
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


def _triples(joined: str | None) -> tuple[str, ...]:
    # The string aggregate's order is unspecified: the set of triples is what counts.
    return tuple(sorted(joined.split(" "))) if joined else ()


def _etag(revision: str, options: ViewOptions, fmt: str) -> str:
    """A strong ETag: the head's revision, the settings the feed shows, the format."""
    key = _fingerprint(
        (
            rendering_version(),
            options.base_url,
            options.site_name,
            options.links_fingerprint,
            fmt,
            revision,
        )
    )
    return f'"{key[:32]}"'


@dataclass(frozen=True, slots=True)
class FeedHead:
    """Everything a subscriber's feed depends on, as read from the store (see module doc)."""

    subscriber_id: int
    token: str
    status: str
    name: str | None
    email: str
    updated: datetime  # the newest item's delivery, else when the subscriber subscribed
    keywords: tuple[str, ...]
    items: int  # in the window
    revision: str  # a hash of all of the above and the window's triples

    def etag(self, options: ViewOptions, fmt: str) -> str:
        return _etag(self.revision, options, fmt)

    def header(self, options: ViewOptions, fmt: str) -> FeedView:
        """The feed's view without its items."""
        links = links_for(options.base_url, self.token)
        self_url = {"atom": links.atom_url, "rss": links.rss_url, "json": links.json_url}[fmt]
        who = self.name or self.email.split("@", 1)[0]
        return FeedView(
            feed_id=subscriber_feed_id(self.token, links.site_url),
            title=f"{options.site_name} for {who}",
            subtitle="New papers picked for your interests: " + ", ".join(self.keywords),
            self_url=self_url,
            site_url=links.site_url,
            author_name=options.site_name,
            items=(),
            updated=self.updated,
        )


def weighted(text: str, weight: float) -> str:
    """A keyword as the profile shows it: ``RLHF^2`` (as ``subscribers.library.spec_of``)."""
    return text if weight == 1.0 else f"{text}^{weight:g}"


def _keywords(found: Any) -> tuple[str, ...]:
    """``[[position, weight, text], …]`` (JSON text on SQLite, parsed on PostgreSQL)."""
    rows = json.loads(found) if isinstance(found, str) else found or []
    return tuple(weighted(text, weight) for _, weight, text in sorted(rows, key=lambda r: r[0]))


def read_head(
    connection: Connection,
    *,
    limit: int,
    token: str | None = None,
    subscriber_id: int | None = None,
) -> FeedHead | None:
    """The head of the subscriber with this token (or id); None when there is none.

    The caller decides what a status means (pending, unsubscribed); the token match is exact
    here and the caller compares it again in constant time."""
    name, value = ("head_token", token) if token is not None else ("head_id", subscriber_id)
    rows = query(connection, name, value, limit, value)
    if not rows:
        return None
    sid, token_, status, name_, email, created_at, confirmed_at, keywords, n, newest, joined = rows[
        0
    ]
    updated = to_utc(connection, newest if n else confirmed_at or created_at)
    words = _keywords(keywords)
    revision = _fingerprint((token_, name_, email, updated.isoformat(), words, n, _triples(joined)))
    return FeedHead(sid, token_, status, name_, email, updated, words, n, revision)


@dataclass(frozen=True, slots=True)
class PublicHead:
    """What the public feed depends on: its newest papers and their ``updated_at``."""

    updated: datetime
    items: int
    revision: str

    def etag(self, options: ViewOptions, fmt: str) -> str:
        return _etag(self.revision, options, f"public:{fmt}")

    def header(self, options: ViewOptions, fmt: str) -> FeedView:
        site = f"{options.base_url}/"
        return FeedView(
            feed_id=f"{site}feeds/all",
            title=f"{options.site_name}: new papers",
            subtitle="Every new paper, newest first, before any personal ranking.",
            self_url=f"{options.base_url}/feeds/all.{fmt}",
            site_url=site,
            author_name=options.site_name,
            items=(),
            updated=self.updated,
        )


def read_public_head(connection: Connection, *, limit: int) -> PublicHead:
    """The public feed's head: the newest papers (the ``first_seen_at`` index), or, before
    any paper, when the store first recorded a run."""
    n, newest, joined = query(connection, "public_head", limit)[0]
    if n:
        updated = to_utc(connection, newest)
    else:
        first_run = query(connection, "first_run")[0][0]
        updated = NEVER if first_run is None else to_utc(connection, first_run)
    return PublicHead(updated, n, _fingerprint((updated.isoformat(), n, _triples(joined))))
