"""End-to-end scale check of a weekly ``digest run``: 100,000 subscribers x 2,000 papers.

    .venv/bin/python bench/run_scale.py [--subscribers 100000] [--papers 2000]
        [--backend sqlite|postgres] [--postgres-url URL] [--transport outbox|smtp]
        [--api-sample 1000] [--timeout 3600] [--profile run.prof] [--analyze] [--keep]
        [--phase1-only]

rank_scale.py times the ranker alone; this times everything ``digest run`` does: one
``runner.run_digests`` call that finds the due subscribers, ranks them all at once, records
every digest and its items, then renders (in the run's renderer processes) and hands every
email to the run's own sender: the outbox in durable batches, or the SMTP connection pool
(whatever ``make_sender`` picks from the settings, as ``digest run`` does). Feeds are not
written by a run: ``digest serve`` answers them from the store (``bench/feeds_http.py``).

Setup (timed separately, not part of the run): a temporary data directory (SQLite) or a
fresh PostgreSQL schema, dropped at the end; papers from ``rank_data.synth_papers`` stored
with ``store.upsert_records`` in seven daily batches over the week before the run;
profiles from ``rank_data.synth_profiles`` written as the subscriber export format. The
first ``--api-sample`` subscribers go through the real import API
(``digests.transfer``: validation, one ``add_subscriber`` per entry); the
rest are bulk INSERTs of the rows that API writes, because at 2-4 ms per subscriber the API
would add three to six minutes of setup at 100,000. The bulk rows are checked against what the
API stored for the sample, so they cannot drift apart. Interests the profile parser refuses
(title fragments made only of stop words) are dropped, as the web form would refuse them.

Every subscriber is weekly, Monday 08:00 UTC, and has no earlier digest, and the run is on
Monday at 09:00: all of them are due and each first digest looks back ``lookback_days``.

Phases are timed by the run itself: ``run_digests`` reports each step (finding, ranking,
recording, then per batch: claim, waiting for the renderers, hand-over, finish; and the
renderers' own time) to a :class:`~digest.runner.RunObserver`; the ranker is the configured
one, its two phases on the same clock. Nothing is patched. ``--profile`` runs the same call
under cProfile (times then inflate), writes the ``.prof`` and prints the top 25 functions by
cumulative time. Peak RSS is the process's high-water mark, reset (``/proc/self/clear_refs``)
after setup so it is the run's own; it is also printed as each top-level step ends.

PostgreSQL plans the run's queries on whatever statistics it has; on a server without
autovacuum (or before it catches up) the freshly filled ``digest`` table has none, and
``--analyze`` runs ``ANALYZE`` after the recording phase and before the feeds, as autovacuum
would in a deployment, so both cases can be measured.

``--phase1-only`` stops the same ``run_digests`` call once phase 1 (due, rank, record and
its commit) has ended: the observer raises at the ``build`` step, so nothing is rendered or
sent (the run's row is closed as failed); it prints phase 1's lines and the peak RSS. For
iterating on phase 1 without phase 2 saturating both cores for two minutes.

``--transport smtp`` delivers over SMTP (``smtp_connections`` connections, the default 4)
to a discarding sink (``counting_sink.CountingSink`` under aiosmtpd) run in a child process
(as a real MTA would be) and stopped at the end. After the run the bench asks the sink how
many bytes it received, and measures the sink's own ceiling on the same machine: prebuilt
messages of the run's mean size, a plain smtplib loop over the same number of connections
(``smtp_ceiling.smtplib_rate``), three rounds; the run's sending rate (messages over the
delivery phase) is printed next to it. The run stops itself after ``--timeout`` seconds and
then reports what it measured with an extrapolation.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import gc
import os
import platform
import pstats
import random
import re
import resource
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from counting_sink import sink_counts
from rank_data import synth_papers, synth_profiles
from smtp_ceiling import discarding_sink, prebuilt_messages, smtplib_rate

from digest import runner
from digest.config.settings import Settings, load_settings
from digest.digests.transfer import apply_document, read_document
from digest.errors import ProfileError
from digest.ranking import Profile, RankDoc, get_ranker, parse_interest
from digest.ranking.profile_text import parse_phrase
from digest.store import db
from digest.store.models import Digest, DigestItem, Interest, Subscriber
from digest.store.papers import upsert_records
from digest.store.records import PaperRecord
from digest.subscribers.library import normalize_email
from digest.subscribers.links import new_token

RUN_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday; subscribers are due at 08:00
SUBSCRIBED = RUN_AT - timedelta(days=30)
BULK_BATCH = 5_000
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PROFILE_KINDS = (  # (export key, stored kind) in the order add_subscriber writes them
    ("keywords", "keyword"),
    ("exclude", "exclude"),
    ("require", "require"),
    ("authors", "author"),
    ("categories", "category"),
)


class BenchTimeoutError(Exception):
    """The timed run went past --timeout; what was measured so far is reported."""


class Phase1DoneError(Exception):
    """--phase1-only: phase 1 is committed; the run stops before delivering anything."""


def _alarm(_signum: int, _frame: object) -> None:
    raise BenchTimeoutError


# Inputs ---------------------------------------------------------------------------------


def paper_records(docs: Sequence[RankDoc]) -> list[list[PaperRecord]]:
    """The synthetic papers as arXiv-like records, in seven daily listings."""
    days: list[list[PaperRecord]] = [[] for _ in range(7)]
    for i, doc in enumerate(docs):
        arxiv_id = f"2611.{i:05d}"
        days[i * 7 // len(docs)].append(
            PaperRecord(
                title=doc.title,
                abstract=doc.abstract,
                authors=doc.authors,
                arxiv_id=arxiv_id,
                version=1,
                url=f"https://arxiv.org/abs/{arxiv_id}",
                pdf_url=f"https://arxiv.org/pdf/{arxiv_id}",
                published=RUN_AT - timedelta(days=8),
                upvotes=doc.upvotes,
                categories=doc.categories,
            )
        )
    return days


def _weighted(text: str, weight: float) -> str:
    return text if weight == 1.0 else f"{text}^{weight:g}"


def _accepted(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except ProfileError:
        return False
    return True


def subscriber_entry(number: int, profile: Profile) -> tuple[dict[str, Any], int]:
    """A subscriber in the export/import format, and how many interests were refused."""
    lists: dict[str, list[str]] = {key: [] for key, _ in PROFILE_KINDS}
    prefix = {"keyword": "", "author": "author:", "category": "cat:"}
    target = {"keyword": "keywords", "author": "authors", "category": "categories"}
    refused = 0
    for interest in profile.interests:
        if _accepted(parse_interest, prefix[interest.kind] + interest.text):
            lists[target[interest.kind]].append(_weighted(interest.text, interest.weight))
        else:
            refused += 1
    for key, phrases in (("exclude", profile.excludes), ("require", profile.required)):
        for phrase in phrases:
            if _accepted(parse_phrase, phrase):
                lists[key].append(phrase)
            else:
                refused += 1
    entry: dict[str, Any] = {
        "email": f"reader{number:06d}@example.org",
        "name": f"Reader {number}",
        "popularity_weight": profile.popularity_weight,
        **{key: texts for key, texts in lists.items() if texts},
    }
    if profile.min_score is not None:
        entry["min_score"] = profile.min_score
    return entry, refused


def subscriber_row(entry: dict[str, Any], *, settings: Settings) -> dict[str, Any]:
    """The subscriber row ``import_subscribers`` writes for ``entry`` (status active)."""
    return {
        "email": normalize_email(entry["email"]),
        "name": entry.get("name"),
        "status": "active",
        "frequency": settings.default_frequency,
        "weekday": settings.default_weekday,
        "hour": settings.default_hour,
        "timezone": settings.default_timezone,
        "max_items": None,
        "min_score": entry.get("min_score"),
        "popularity_weight": entry.get("popularity_weight", 0.0),
        "token": new_token(),
        "origin": "import",
        "bounce_count": 0,
        "last_bounce": None,
        "created_at": SUBSCRIBED,
        "updated_at": SUBSCRIBED,
        "confirmed_at": SUBSCRIBED,
        "unsubscribed_at": None,
    }


def interest_rows(entry: dict[str, Any]) -> list[tuple[str, str, float, int]]:
    """(kind, text, weight, position) as ``add_subscriber`` stores them: keyword weights
    parsed, other kinds verbatim, one row per (kind, case-folded text)."""
    rows: list[tuple[str, str, float, int]] = []
    seen: set[tuple[str, str]] = set()
    for key, kind in PROFILE_KINDS:
        for position, text in enumerate(entry.get(key, [])):
            if kind == "keyword":
                interest = parse_interest(text)
                row = (interest.kind, interest.text, interest.weight, position)
            else:
                row = (kind, text.strip(), 1.0, position)
            if row[1] and (row[0], row[1].casefold()) not in seen:
                seen.add((row[0], row[1].casefold()))
                rows.append(row)
    return rows


# Setup ----------------------------------------------------------------------------------


def store_papers(settings: Settings, days: list[list[PaperRecord]]) -> int:
    new = 0
    for day, records in enumerate(days):
        seen_at = RUN_AT - timedelta(days=7) + timedelta(days=day, hours=2)
        with db.transaction(settings) as session:
            new += upsert_records(session, records, source="bench", now=seen_at).new
    return new


def import_sample(settings: Settings, entries: list[dict[str, Any]]) -> None:
    document = read_document(entries, "bench")  # the import API: validation, then one
    with db.transaction(settings) as session:  # add_subscriber per entry
        apply_document(session, document, settings=settings, now=SUBSCRIBED, update=False)


def check_bulk_rows(settings: Settings, entries: list[dict[str, Any]]) -> None:
    """Fail unless the bulk rows equal what the import API stored for the same entries."""
    emails = [normalize_email(e["email"]) for e in entries]
    with db.transaction(settings) as session:
        stored = {
            s.email: s
            for s in session.execute(
                sa.select(Subscriber).where(Subscriber.email.in_(emails))
            ).scalars()
        }
        interests: dict[int, list[tuple[str, str, float, int]]] = defaultdict(list)
        ids = [s.id for s in stored.values()]
        for row in session.execute(
            sa.select(Interest).where(Interest.subscriber_id.in_(ids)).order_by(Interest.id)
        ).scalars():
            interests[row.subscriber_id].append((row.kind, row.text, row.weight, row.position))
    for entry in entries:
        want = subscriber_row(entry, settings=settings)
        got = stored[want["email"]]
        diff = [k for k, v in want.items() if k != "token" and getattr(got, k) != v]
        if diff or interest_rows(entry) != interests[got.id]:
            raise SystemExit(f"bulk rows differ from the import API's for {want['email']}: {diff}")


def bulk_insert(settings: Settings, entries: list[dict[str, Any]]) -> int:
    """INSERT the subscriber and interest rows in batches; returns the interest rows."""
    rows = [subscriber_row(e, settings=settings) for e in entries]
    with db.transaction(settings) as session:
        for start in range(0, len(rows), BULK_BATCH):
            session.execute(sa.insert(Subscriber), rows[start : start + BULK_BATCH])
        found = session.execute(sa.select(Subscriber.email, Subscriber.id))
        ids = {email: subscriber_id for email, subscriber_id in found}  # noqa: C416 - Row
        interests = [
            {
                "subscriber_id": ids[row["email"]],
                "kind": kind,
                "text": text,
                "weight": weight,
                "position": position,
            }
            for row, entry in zip(rows, entries, strict=True)
            for kind, text, weight, position in interest_rows(entry)
        ]
        for start in range(0, len(interests), BULK_BATCH):
            session.execute(sa.insert(Interest), interests[start : start + BULK_BATCH])
    return len(interests)


@contextlib.contextmanager
def postgres_schema(url: str, *, keep: bool) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards (unless --keep)."""
    schema = f"bench_{secrets.token_hex(6)}"
    admin = sa.create_engine(url, connect_args={"connect_timeout": 10})
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    joiner = "&" if "?" in url else "?"
    try:
        yield f"{url}{joiner}options=-csearch_path%3D{schema}"
    finally:
        db.dispose_engines()
        if keep:
            print(f"kept schema {schema}: DROP SCHEMA {schema} CASCADE when done", file=sys.stderr)
        else:
            with admin.begin() as connection:
                connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# The timed run --------------------------------------------------------------------------


class Clock:
    """Seconds and calls per name, accumulated by wrapped functions."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.memory: list[tuple[str, float, float]] = []  # after each step: RSS, peak RSS
        # after each step: this process's CPU seconds (user, system), all threads
        self.cpu: dict[str, tuple[float, float]] = {}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1

        return timed


class TimedRanker:
    """The configured ranker with its two phases on the clock (``rank``: either way a
    ranker gives its picks, as objects or as arrays)."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self.name = inner.name
        self.prepare = clock.wrap("prepare", inner.prepare)
        self.rank = clock.wrap("rank", inner.rank)
        if hasattr(inner, "ranking"):  # digest.ranking.base.RanksInArrays, as the run uses it
            self.ranking = clock.wrap("rank", inner.ranking)


# The run's top-level steps, in order: RSS and peak RSS are noted as each one ends.
MEMORY_STEPS = ("due", "select", "record", "build", "deliverable", "deliver")


class BenchObserver:
    """The run's :class:`~digest.runner.RunObserver`: every step on the clock; ``analyze``
    (if given) runs once the digests are recorded and committed, before the first message,
    on the clock as "analyze"; the feeds loop stops at the deadline."""

    def __init__(
        self,
        clock: Clock,
        deadline: float,
        analyze: Callable[[], None] | None,
        *,
        phase1_only: bool = False,
    ) -> None:
        self.clock, self.deadline, self.phase1_only = clock, deadline, phase1_only
        self.analyze = clock.wrap("analyze", analyze) if analyze is not None else None

    def step(self, name: str, seconds: float) -> None:
        if name in MEMORY_STEPS:
            self.clock.memory.append((name, _rss_mb(), _hwm_mb()))
            self.clock.cpu[name] = _cpu_seconds()
        self.clock.seconds[name] += seconds
        self.clock.calls[name] += 1
        if name == "build" and self.phase1_only:
            raise Phase1DoneError
        if name == "build" and self.analyze is not None:
            self.analyze()
        if name == "feeds" and time.perf_counter() > self.deadline:
            raise BenchTimeoutError


class Progress:
    """The run's progress callback: a line every 5% with rate and ETA; enforces the deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline, self.done, self.total = deadline, 0, 0
        self.started: float | None = None

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if self.started is None:
            self.started = now
        self.done, self.total = done, total
        if done % max(total // 20, 1) == 0 or done == total:
            rate = done / max(now - self.started, 1e-9)
            print(
                f"  delivered {done}/{total} ({rate:.0f}/s, ETA {(total - done) / rate:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
        if now > self.deadline and done < total:
            raise BenchTimeoutError


def _hwm_mb() -> float:
    """The process's peak RSS: VmHWM (resettable) on Linux, else ru_maxrss."""
    with contextlib.suppress(OSError):
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    with contextlib.suppress(OSError):
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    return float("nan")


def _reset_hwm() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _files(directory: Path) -> tuple[int, int]:
    """(files, bytes) directly in ``directory``."""
    if not directory.is_dir():
        return 0, 0
    count = size = 0
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_file():
                count, size = count + 1, size + entry.stat().st_size
    return count, size


def _store_size_mb(settings: Settings) -> float:
    engine = db.get_engine(settings)
    if engine.dialect.name == "sqlite":
        files = settings.data_dir.glob("digest.sqlite3*")
        return sum(f.stat().st_size for f in files) / 2**20
    with engine.connect() as connection:
        size = connection.execute(
            sa.text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
        ).scalar()
    return float(size or 0) / 2**20


# Report ---------------------------------------------------------------------------------


def print_run_table(
    clock: Clock, total: float, stopped: str | None, processes: int, *, phase1_only: bool = False
) -> None:
    s, n = clock.seconds, clock.calls

    def row(phase: str, step: str, seconds: float, calls: int | None = None) -> None:
        per = f"{seconds / calls * 1000:.2f} ms" if calls else ""
        share = f"{seconds / total:.0%}" if total else ""
        print(f"| {phase} | {step} | {seconds:.2f} s | {share} | {calls or ''} | {per} |")

    print("| phase | step | time | share | calls | per call |")
    print("|---|---|---|---|---|---|")
    row("due", "`find_due`: subscribers, periods, ledger, interests → profiles", s["due"], n["due"])
    row("ranking", "`select_papers` (all due subscribers at once)", s["select"], n["select"])
    row("", "↳ `ranker.prepare` (the papers)", s["prepare"], n["prepare"])
    row("", "↳ `ranker.rank` (every profile)", s["rank"], n["rank"])
    row(
        "",
        "↳ rest: load papers, ledger query, Selection objects",
        s["select"] - s["prepare"] - s["rank"],
    )
    row(
        "recording",
        "`ledger.record_digests` (digest rows + items, in bulk)",
        s["record"],
        n["record"],
    )
    row("", "rest of phase 1 (commit)", s["build"] - s["due"] - s["select"] - s["record"])
    row("**phase 1**", "**due + rank + record**", s["build"], n["build"])
    if phase1_only:
        row("other", "engine + migration check, Run row, stopping", total - s["build"])
        print(f"| total | **run_digests, {stopped}** | **{total:.1f} s** | 100% | | |")
        return
    row("delivery", "`ledger.deliverable` (ids to send)", s["deliverable"], n["deliverable"])
    row("", "phase 2: claim, render, send, record (batches)", s["deliver"], n["deliver"])
    row("", "↳ `ledger.claim_batch` (one UPDATE per batch)", s["claim"], n["claim"])
    row("", "↳ payloads from the store (retries only)", s["load"], n["load"])
    row("", "↳ waiting for the renderers", s["render_wait"], n["render_wait"])
    row("", "↳ handing over (sender.submit)", s["send"], n["send"])
    row("", "↳ `ledger.finish_batch` (outcomes, in groups)", s["finish"], n["finish"])
    steps = ("claim", "load", "render_wait", "send", "finish")
    row(
        "",
        "↳ rest: payloads from memory, outcomes, hand-back",
        s["deliver"] - sum(s[k] for k in steps),
    )
    row(
        "rendering",
        f"renderers' own time, {processes} process(es), in parallel with the above",
        s["render"],
        n["render"],
    )
    accounted = s["build"] + s["deliverable"] + s["deliver"]
    if n["analyze"]:
        row("other", "ANALYZE (--analyze, stands in for autovacuum)", s["analyze"], n["analyze"])
    accounted += s["analyze"]
    row("other", "engine + migration check, Run row, claimant, final commit", total - accounted)
    label = f"**run_digests, {stopped}**" if stopped else "**run_digests total**"
    print(f"| total | {label} | **{total:.1f} s** | 100% | | |")


def _cpu_seconds() -> tuple[float, float]:
    """This process's CPU time so far (user, system), every thread."""
    times = os.times()
    return times.user, times.system


def _children_cpu() -> float:
    """CPU seconds of this process's ended (reaped) child processes, user + system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def print_cpu_split(clock: Clock, messages: int) -> None:
    """Where phase 2's CPU went, per message: the renderers' processes (the CPU time each
    measured around its batches) and this process, all its threads (claims, hand-over, the
    outbox writer or SMTP pool, results read from the renderers, the ledger)."""
    if not messages or "deliver" not in clock.cpu or "deliverable" not in clock.cpu:
        return
    (user, system), (user0, system0) = clock.cpu["deliver"], clock.cpu["deliverable"]
    per = 1000 / messages
    print(
        f"| phase 2 CPU per message: renderers / main process, all threads (user + system) | "
        f"{clock.seconds['render_cpu'] * per:.2f} ms / "
        f"{(user - user0) * per:.2f} + {(system - system0) * per:.2f} ms |"
    )
    if "children" in clock.cpu:  # the renderers, reaped when the run closed its pool
        print(
            "| renderer processes, all their CPU per message (start-up, payloads and results "
            f"through the pool's pipes included) | {sum(clock.cpu['children']) * per:.2f} ms |"
        )


def extrapolate(clock: Clock, progress: Progress) -> None:
    """What the whole run would take, from the costs measured before the stop."""
    s = clock.seconds
    if not progress.done or not progress.total:
        print("| extrapolation | none: delivery had not started |")
        return
    delivery = s["deliver"] / progress.done * progress.total
    known = s["build"] + s["deliverable"]
    print(
        f"| extrapolated: phase 1 {known:.0f} s + delivery {delivery:.0f} s | "
        f"{known + delivery:.0f} s |"
    )
    print(f"| digests delivered before the stop | {progress.done} of {progress.total} |")


def count_rows(settings: Settings) -> tuple[int, int]:
    with db.transaction(settings) as session:
        digests = session.execute(sa.select(sa.func.count()).select_from(Digest)).scalar_one()
        items = session.execute(sa.select(sa.func.count()).select_from(DigestItem)).scalar_one()
    return int(digests), int(items)


# Main -----------------------------------------------------------------------------------


def make_bench_settings(
    data_dir: Path, database_url: str | None, smtp_port: int | None
) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "base_url": "https://digest.example.org",
        "mail_from": "Paper digest <digest@digest.example.org>",
    }
    if smtp_port is not None:
        values.update(delivery="smtp", smtp_host="127.0.0.1", smtp_port=smtp_port)
    return load_settings(**values)


@dataclass(slots=True)
class SetupReport:
    """What setup stored and how long each step took (seconds)."""

    refused: int = 0  # interests the profile parser refused
    papers: int = 0
    api_subscribers: int = 0
    bulk_subscribers: int = 0
    bulk_interests: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def setup(args: argparse.Namespace, settings: Settings) -> SetupReport:
    """Store the papers and the subscribers."""
    done = SetupReport()
    marks = [time.perf_counter()]
    rng = random.Random(7)
    days = paper_records(synth_papers(args.papers, rng))
    pairs = [subscriber_entry(i, p) for i, p in enumerate(synth_profiles(args.subscribers, rng))]
    entries = [entry for entry, _ in pairs]
    done.refused = sum(refused for _, refused in pairs)
    del pairs
    marks.append(time.perf_counter())
    db.get_engine(settings)
    marks.append(time.perf_counter())
    done.papers = store_papers(settings, days)
    marks.append(time.perf_counter())
    sample = entries[: args.api_sample]
    if sample:
        import_sample(settings, sample)
    marks.append(time.perf_counter())
    if sample and len(sample) < len(entries):
        check_bulk_rows(settings, sample)
    marks.append(time.perf_counter())
    done.bulk_interests = bulk_insert(settings, entries[len(sample) :])
    marks.append(time.perf_counter())
    steps = ("synth", "migrate", "store", "api", "check", "bulk")
    done.seconds = {step: marks[i + 1] - marks[i] for i, step in enumerate(steps)}
    done.api_subscribers, done.bulk_subscribers = len(sample), len(entries) - len(sample)
    return done


def print_setup_table(args: argparse.Namespace, done: SetupReport, warm: float) -> None:
    t = done.seconds
    print("| setup (not part of the run) | |")
    print("|---|---|")
    print(f"| kernel in Numba's cache (separate process) | {warm:.1f} s |")
    print(
        f"| synthesize {args.papers} papers + {args.subscribers} profiles "
        f"({done.refused} stop-word-only interests refused) | {t['synth']:.1f} s |"
    )
    print(f"| create the store (migrations) | {t['migrate']:.1f} s |")
    print(f"| `upsert_records`: {done.papers} papers in 7 daily batches | {t['store']:.1f} s |")
    if done.api_subscribers:
        per = t["api"] / done.api_subscribers
        print(
            f"| import API (`digests.transfer`): {done.api_subscribers} subscribers "
            f"({per * 1000:.1f} ms each; {per * args.subscribers:.0f} s for all "
            f"{args.subscribers}) | {t['api']:.1f} s |"
        )
    if done.bulk_subscribers:
        print(
            f"| bulk INSERT of the same rows: {done.bulk_subscribers} subscribers, "
            f"{done.bulk_interests} interests (checked against the API's rows: "
            f"{t['check']:.1f} s) | {t['bulk']:.1f} s |"
        )


@dataclass(slots=True)
class TimedRun:
    """The outcome of the timed call: its report, or why it ended early."""

    progress: Progress
    report: runner.RunReport | None = None
    seconds: float = 0.0
    stopped: str | None = None  # "timeout" or the error that ended it


CEILING_MESSAGES = 3000
CEILING_ROUNDS = 3


def print_smtp_ceiling(settings: Settings, sent: int, deliver_seconds: float) -> None:
    """The sink's own ceiling next to the run's sending rate (see the module docstring)."""
    assert settings.smtp_port is not None
    received, size = sink_counts(settings.smtp_port)
    mean = size // max(received, 1)
    connections = settings.smtp_connections
    batch = prebuilt_messages(CEILING_MESSAGES, mean)
    smtplib_rate(settings.smtp_port, batch[: connections * 20], connections)  # warm-up
    rates = sorted(
        smtplib_rate(settings.smtp_port, batch, connections).rate for _ in range(CEILING_ROUNDS)
    )
    ceiling = rates[len(rates) // 2]
    run_rate = sent / deliver_seconds
    print(
        f"SMTP: the sink received {received} messages of {mean / 1024:.0f} KB on average; "
        f"its ceiling: plain smtplib, {connections} connections, {CEILING_MESSAGES} prebuilt "
        f"messages of {mean:,} bytes, median of {CEILING_ROUNDS} rounds"
    )
    print()
    print("| sending rate | messages/s | of the ceiling |")
    print("|---|---|---|")
    spread = f" (rounds {rates[0]:,.0f}-{rates[-1]:,.0f})"
    print(f"| the sink's ceiling (plain smtplib) | {ceiling:,.0f}{spread} | 100% |")
    print(
        f"| **the run** ({sent} sent over the {deliver_seconds:.1f} s delivery phase: "
        f"rendering, SMTP pool, ledger) | **{run_rate:,.0f}** | **{run_rate / ceiling:.0%}** |"
    )


def timed_run(args: argparse.Namespace, settings: Settings, clock: Clock) -> TimedRun:
    deadline = time.perf_counter() + args.timeout
    run = TimedRun(Progress(deadline))
    ranker = TimedRanker(get_ranker(settings.ranker), clock)
    profiler = cProfile.Profile() if args.profile else None
    analyze = None
    if args.analyze and args.backend == "postgres":

        def analyze() -> None:
            with db.get_engine(settings).begin() as connection:
                connection.execute(sa.text("ANALYZE"))

    # A backstop for phases that never call back (ranking, recording): SIGALRM interrupts
    # them a little after the deadline.
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(args.timeout) + 120)
    clock.cpu["start"] = _cpu_seconds()
    children = _children_cpu()
    start = time.perf_counter()
    try:
        if profiler:
            profiler.enable()
        run.report = runner.run_digests(
            settings,
            now=RUN_AT,
            ranker=ranker,
            on_progress=run.progress,
            observer=BenchObserver(clock, deadline, analyze, phase1_only=args.phase1_only),
        )
    except Phase1DoneError:
        run.stopped = "stopped after phase 1 (--phase1-only)"
    except BenchTimeoutError:
        run.stopped = f"stopped at --timeout {args.timeout:.0f} s"
    except Exception as exc:  # report what was measured before the failure, and the error
        print(f"run_digests failed: {type(exc).__name__}: {exc}"[:3000], file=sys.stderr)
        run.stopped = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    finally:
        if profiler:
            profiler.disable()
        signal.alarm(0)
    run.seconds = time.perf_counter() - start
    clock.cpu["children"] = (_children_cpu() - children, 0.0)
    if profiler:
        profiler.dump_stats(args.profile)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=2_000)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--transport", choices=("outbox", "smtp"), default="outbox")
    parser.add_argument(
        "--api-sample", type=int, default=1_000, help="subscribers added through the API"
    )
    parser.add_argument("--timeout", type=float, default=3_600, help="seconds for the run")
    parser.add_argument("--profile", type=Path, help="run under cProfile, write this .prof")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="PostgreSQL: ANALYZE after recording and before the feeds, as autovacuum would",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (and schema)")
    parser.add_argument(
        "--phase1-only",
        action="store_true",
        help="stop after phase 1 (due, rank, record, commit): its lines and the peak RSS",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile = args.profile.resolve()  # before the chdir below
    for name in [n for n in os.environ if n.startswith("DIGEST_")]:
        del os.environ[name]  # no developer settings leak into the measurement
    t_warm = time.perf_counter()
    warm_up = "from digest.ranking.lexical import compile_kernel; compile_kernel()"
    subprocess.run([sys.executable, "-c", warm_up], check=True)
    warm = time.perf_counter() - t_warm
    temp = Path(tempfile.mkdtemp(prefix="run_scale-"))
    os.chdir(temp)  # no ./digest.toml is picked up
    try:
        with contextlib.ExitStack() as stack:
            url = None
            if args.backend == "postgres":
                url = stack.enter_context(postgres_schema(args.postgres_url, keep=args.keep))
            port = stack.enter_context(discarding_sink(temp)) if args.transport == "smtp" else None
            settings = make_bench_settings(temp / "data", url, port)
            bench(args, settings, warm)
    finally:
        db.dispose_engines()
        if args.keep:
            print(f"kept {temp}", file=sys.stderr)
        else:
            shutil.rmtree(temp, ignore_errors=True)


def bench(args: argparse.Namespace, settings: Settings, warm: float) -> None:
    print(f"setting up {args.subscribers} subscribers x {args.papers} papers...", file=sys.stderr)
    setup_times = setup(args, settings)
    db.dispose_engines()  # the run opens its own engine, as a fresh `digest run` would
    gc.collect()
    rss_before = _rss_mb()
    _reset_hwm()
    print("running run_digests...", file=sys.stderr)
    clock = Clock()
    run = timed_run(args, settings, clock)
    peak = _hwm_mb()
    digests, items = count_rows(settings)
    emails, email_bytes = _files(settings.resolved_outbox_dir)
    engine = db.get_engine(settings)
    with engine.connect() as connection:
        version = (
            f"SQLite {sqlite3.sqlite_version}"
            if engine.dialect.name == "sqlite"
            else str(connection.execute(sa.text("SHOW server_version")).scalar())
        )
    store_mb = _store_size_mb(settings)
    transport = "outbox (.eml files)" if args.transport == "outbox" else "SMTP pool to a sink"
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {version}, transport: {transport}"
    )
    print()
    print_setup_table(args, setup_times, warm)
    print()
    print(
        f"Weekly run: {args.subscribers} subscribers x {args.papers} papers, "
        f"{settings.max_items} items per digest"
        + (" (under cProfile: times inflated)" if args.profile else "")
    )
    print()
    print_run_table(
        clock,
        run.seconds,
        run.stopped,
        runner.render_processes(settings, args.subscribers),
        phase1_only=args.phase1_only,
    )
    print()
    print("| result | |")
    print("|---|---|")
    report = run.report
    if report is not None:
        print(
            f"| due / sent / empty / failed | {report.due} / {report.sent} / {report.empty} / "
            f"{report.failed} |"
        )
        print(f"| digests per second, whole run | **{report.due / run.seconds:.0f}** |")
        processes = runner.render_processes(settings, report.sent + report.failed)
        if clock.seconds["render"]:
            rate = report.sent / clock.seconds["render"]
            print(
                f"| rendering: messages per second per renderer / over {processes} | "
                f"{rate:.0f} / **{rate * processes:.0f}** |"
            )
        print_cpu_split(clock, report.sent + report.failed)
    elif not args.phase1_only:
        print(f"| **run {run.stopped}** | after {run.seconds:.0f} s |")
        extrapolate(clock, run.progress)
    print(f"| digest rows / digest_item rows | {digests} / {items} |")
    if args.phase1_only:
        pass  # nothing was rendered or sent
    elif args.transport == "outbox":
        print(
            f"| emails written (.eml) | {emails} ({email_bytes / 2**20:.0f} MB, "
            f"{email_bytes / max(emails, 1) / 1024:.0f} KB each) |"
        )
    else:
        print(f"| emails handed to the SMTP pool | {clock.calls['send']} |")
    print(f"| store size after the run | {store_mb:.0f} MB |")
    print(
        f"| RSS at start of run / **peak RSS during run** | {rss_before:.0f} MB / "
        f"**{peak:.0f} MB** |"
    )
    if args.transport == "smtp" and report is not None and report.sent:
        print()
        print_smtp_ceiling(settings, report.sent, clock.seconds["deliver"])
    print()
    print(
        "| main process, as each step ends | RSS | peak RSS so far | CPU in the step (user+sys) |"
    )
    print("|---|---|---|---|")
    before = sum(clock.cpu["start"])
    for name, rss, hwm in clock.memory:
        used = sum(clock.cpu[name])
        print(f"| {name} | {rss:.0f} MB | {hwm:.0f} MB | {used - before:.2f} s |")
        before = used
    if args.profile:
        print()
        print(f"cProfile written to {args.profile}; top 25 by cumulative time:")
        print("```")
        pstats.Stats(str(args.profile), stream=sys.stdout).sort_stats("cumulative").print_stats(25)
        print("```")


if __name__ == "__main__":
    main()
