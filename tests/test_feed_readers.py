"""Personal feeds served by the real app, read by real feed readers (Debian's newsboat and
rss2email) and fetched with conditional GETs.

The feeds come from the real pipeline: the bundled sample is imported, one digest is
delivered through the outbox, then the app serves the subscriber's feeds over uvicorn on
loopback. ``make system-deps`` (part of ``make test``) installs the readers when missing;
without them these tests skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col
from web_server import LiveApp, live_app  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package

from digest.config.resources import sample_dir
from digest.config.settings import Settings
from digest.delivery.outbox import OutboxTransport
from digest.runner import run_digests
from digest.sources.imports import import_files
from digest.store import db
from digest.store.models import Digest, DigestItem, Paper
from digest.subscribers.library import ProfileSpec, SubscriberFields, add_subscriber, get_subscriber
from digest.testing.smtp import SmtpSink

IMPORTED = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday
RUN_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
EMAIL = "grace@example.org"
READER_TIMEOUT = 30  # seconds for one reader command

pytestmark = pytest.mark.timeout(120)


def need(binary: str, package: str) -> str:
    """The binary's path; skip (fail under CI=true) when the Debian package is missing."""
    path = shutil.which(binary)
    if path is None:
        reason = f"{binary} not found (Debian package {package}: `make system-deps` as root)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


@dataclass(frozen=True)
class Served:
    """The running app and what the subscriber's feeds must hold."""

    live: LiveApp
    token: str
    titles: list[str]  # delivered papers, feed order

    def feed_url(self, fmt: str) -> str:
        return f"{self.live.url}/feeds/{self.token}.{fmt}"


def deliver_one_digest(settings: Settings) -> None:
    """Import the sample, add a subscriber and deliver their first digest to the outbox."""
    import_files(settings, sorted(sample_dir().glob("*.txt.gz")), now=IMPORTED)
    with db.transaction(settings) as session:
        add_subscriber(
            session,
            email=EMAIL,
            profile=ProfileSpec(keywords=["language model", "pretraining data"]),
            fields=SubscriberFields(
                name="Grace Hopper", frequency="daily", hour=7, timezone="UTC", max_items=8
            ),
            settings=settings,
            now=IMPORTED - timedelta(days=1),
        )
    with OutboxTransport(settings.resolved_outbox_dir) as transport:
        report = run_digests(settings, now=RUN_AT, transport=transport)
    assert report.sent == 1, report.as_dict()


@pytest.fixture
def served(make_settings: Callable[..., Settings]) -> Iterator[Served]:
    with live_app(make_settings, prepare=deliver_one_digest) as live:
        with db.transaction(live.settings) as session:
            subscriber = get_subscriber(session, EMAIL)
            token = subscriber.token
            titles = session.execute(
                select(Paper.title)
                .join(DigestItem, col(DigestItem.paper_id) == col(Paper.id))
                .join(Digest, col(DigestItem.digest_id) == col(Digest.id))
                .where(col(DigestItem.subscriber_id) == subscriber.id)
                .where(col(Digest.status) == "sent")
                .order_by(col(DigestItem.rank))
            ).scalars()
            served = Served(live=live, token=token, titles=list(titles))
        assert served.titles, "the sample should give this profile some papers"
        yield served


def isolated_env(home: Path) -> dict[str, str]:
    """A reader's environment: its own HOME and XDG dirs, nothing of the developer's."""
    for sub in (".config", ".local/share", ".cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
    }


def run(command: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command,
        env=isolated_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=READER_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{command[0]} exited {done.returncode}: {done.stderr}"
    return done


def test_newsboat_reads_every_item(served: Served, tmp_path: Path) -> None:
    newsboat = need("newsboat", "newsboat")
    for fmt in ("atom", "rss"):
        # One cache per feed: newsboat merges items with the same guid across feeds.
        read_with_newsboat(newsboat, served, fmt, tmp_path / f"newsboat-{fmt}")


def read_with_newsboat(newsboat: str, served: Served, fmt: str, home: Path) -> None:
    home.mkdir()
    (home / "urls").write_text(served.feed_url(fmt) + "\n")
    (home / "config").write_text("")  # no developer config: the defaults
    done = run(
        [newsboat, "-u", "urls", "-c", "cache.db", "-C", "config", "-x", "reload", "print-unread"],
        home,
    )
    assert done.stdout.strip() == f"{len(served.titles)} unread articles"
    # What newsboat stored: the same papers, each once, in feed order, from this feed.
    with sqlite3.connect(home / "cache.db") as cache:
        rows = cache.execute(
            "SELECT title, guid, feedurl FROM rss_item ORDER BY pubDate DESC, id"
        ).fetchall()
        feeds = cache.execute("SELECT rssurl, title FROM rss_feed").fetchall()
    assert [title for title, _, _ in rows] == served.titles
    assert len({guid for _, guid, _ in rows}) == len(rows)
    assert {url for _, _, url in rows} == {served.feed_url(fmt)}
    assert feeds == [(served.feed_url(fmt), "Paper digest for Grace Hopper")]


def test_rss2email_sends_each_entry_once(served: Served, tmp_path: Path) -> None:
    r2e = need("r2e", "rss2email")
    home = tmp_path / "rss2email"
    home.mkdir()
    with SmtpSink() as sink:
        config = home / "rss2email.cfg"
        config.write_text(
            "[DEFAULT]\n"
            "to = reader@example.org\n"
            "from = feeds@example.org\n"
            "email-protocol = smtp\n"
            f"smtp-server = {sink.host}:{sink.port}\n"
            "feed-timeout = 10\n"
        )
        base = [r2e, "-c", str(config), "-d", str(home / "rss2email.json")]
        run([*base, "add", "atom", served.feed_url("atom")], home)
        run([*base, "add", "rss", served.feed_url("rss")], home)

        run([*base, "run"], home)
        first = [m.message for m in sink.messages]
        run([*base, "run"], home)  # the feeds have not changed
        second = sink.messages[len(first) :]

    count = len(served.titles)
    assert len(first) == 2 * count
    assert second == []
    for fmt in ("atom", "rss"):
        mails = [m for m in first if m["X-RSS-Feed"] == served.feed_url(fmt)]
        assert sorted(m["Subject"] for m in mails) == sorted(served.titles), fmt
        assert len({m["X-RSS-ID"] for m in mails}) == count, fmt
    # rss2email kept the ETag: its second run was a conditional GET answered 304.
    state = json.loads((home / "rss2email.json").read_text())
    etags = {feed["name"]: feed["etag"] for feed in state["feeds"]}
    with httpx.Client(timeout=10) as client:
        for fmt in ("atom", "rss"):
            assert etags[fmt] == client.get(served.feed_url(fmt)).headers["ETag"]


def test_feed_conditional_get(backend: str, served: Served) -> None:
    """On SQLite and PostgreSQL: ETag and Last-Modified stable, 304 on a match, 404 unknown."""
    for fmt in ("atom", "rss", "json"):
        check_conditional_get(served, fmt)


def check_conditional_get(served: Served, fmt: str) -> None:
    url = served.feed_url(fmt)
    with httpx.Client(timeout=10) as client:
        first = client.get(url)
        assert first.status_code == 200
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert parsedate_to_datetime(modified) <= datetime.now(UTC)

        again = client.get(url, headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        assert again.headers["ETag"] == etag

        since = client.get(url, headers={"If-Modified-Since": modified})
        assert since.status_code == 304

        stale = client.get(url, headers={"If-None-Match": '"not-this-one"'})
        assert stale.status_code == 200
        assert stale.content == first.content  # the same feed, byte for byte

        unknown = client.get(f"{served.live.url}/feeds/{'x' * 32}.{fmt}")
        assert unknown.status_code == 404

    if fmt == "json":
        items = json.loads(first.content)["items"]
        assert [item["title"] for item in items] == served.titles
    else:
        parsed = feedparser.parse(first.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert [entry.title for entry in parsed.entries] == served.titles, fmt
