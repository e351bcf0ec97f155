"""Personal feeds over HTTP: ``digest serve`` under ``wrk`` on loopback, ours beside a baseline.

    .venv/bin/python bench/feeds_http.py [--subscribers 1000] [--digests 3] [--items 15]
        [--duration 10] [--connections 20] [--threads 2] [--baseline DIR] [--repeat 1]
        [--cases one-304,one-full,many-304,many-full] [--backend sqlite|postgres]
        [--without-speedups]

For each checkout (this one; with ``--without-speedups`` this one again with httptools and
uvloop made unimportable, so uvicorn falls back to h11 and asyncio; and ``--baseline DIR``:
a plain checkout of another commit, e.g. ``git archive <commit> | tar -x -C
/tmp/pd-baseline``, run as its own pyproject installs it, i.e. without those two) the script

1. seeds a fresh store in a temporary directory (SQLite, or a fresh PostgreSQL schema with
   ``--backend postgres``) with that checkout's own code, in a child process: the bundled
   sample listings (202 papers), ``--subscribers`` subscribers added through
   ``add_subscriber`` (frequency ``off``, so the scheduler inside ``digest serve`` never
   delivers during the measurement) and, per subscriber, ``--digests`` sent digests of
   ``--items`` distinct papers each (bulk INSERTs of ledger rows);
2. starts ``digest serve --port P`` from that checkout on a free loopback port, waits for
   ``/healthz``, reads every subscriber's Atom ETag once (which also warms whatever the
   server caches, as a reader population polling the feeds would);
3. runs ``wrk -t THREADS -c CONNECTIONS -d DURATION`` for each case:

   - ``one-304``: one subscriber's Atom feed with ``If-None-Match: <its ETag>``;
   - ``one-full``: the same feed, unconditional (200 with the whole feed);
   - ``many-304`` / ``many-full``: the same, rotating over every subscriber's feed (a Lua
     ``request()`` hook), so no single cache entry carries the run;

   and checks wrk saw no socket errors and, through a Lua ``response()`` hook, no status
   other than the expected one (304 or 200);
4. stops the server (SIGTERM, then SIGKILL after 10 s) and deletes the store.

It prints req/s per case and checkout side by side (min-max over ``--repeat`` runs). Every
run is bounded: ``--duration`` per case, 60 s for the server to start, wrk killed after
``duration + 30`` s. Loopback only: the server binds 127.0.0.1. Needs ``wrk`` (Debian
package ``wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SENT_AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # the first digest; then one a week
CASES = ("one-304", "one-full", "many-304", "many-full")
START_TIMEOUT = 60.0
SPEEDUPS = ("httptools", "uvloop")
SECRET = "bench-secret-key-not-for-production-0123456789"


# Seeding (runs in a child process, with the checkout under test first on sys.path) --------


def seed(data_dir: Path, database_url: str, subscribers: int, digests: int, items: int) -> None:
    """Fill a fresh store through the checkout's own code; write the tokens to tokens.json."""
    import sqlalchemy as sa  # noqa: PLC0415 - the checkout's environment, in the child

    from digest.config.resources import sample_dir  # noqa: PLC0415
    from digest.config.settings import load_settings  # noqa: PLC0415
    from digest.sources.imports import import_files  # noqa: PLC0415
    from digest.store import db  # noqa: PLC0415
    from digest.store.models import Digest, DigestItem, Paper  # noqa: PLC0415
    from digest.subscribers.library import (  # noqa: PLC0415
        ProfileSpec,
        SubscriberFields,
        add_subscriber,
    )

    settings = load_settings(data_dir=data_dir, database_url=database_url, secret_key=SECRET)
    import_files(settings, sorted(sample_dir().glob("*.txt.gz")), now=SENT_AT - timedelta(days=7))
    rng = random.Random(7)
    tokens: list[str] = []
    with db.transaction(settings) as session:
        paper_ids = list(session.execute(sa.select(Paper.id)).scalars())
        for n in range(subscribers):
            subscriber = add_subscriber(
                session,
                email=f"reader{n:06d}@example.org",
                profile=ProfileSpec(keywords=["language model", f"topic {n % 37}", "robotics"]),
                fields=SubscriberFields(name=f"Reader {n}", frequency="off"),
                settings=settings,
                now=SENT_AT - timedelta(days=30),
            )
            tokens.append(subscriber.token)
    engine = db.get_engine(settings)
    with engine.begin() as connection:
        ids = list(connection.execute(sa.text("SELECT id FROM subscriber ORDER BY id")).scalars())
        digest_rows = []
        for subscriber_id in ids:
            for d in range(digests):
                sent = SENT_AT + timedelta(days=7 * d)
                digest_rows.append(
                    {
                        "subscriber_id": subscriber_id,
                        "period_key": f"W{d}",
                        "period_label": f"week {d}",
                        "status": "sent",
                        "window_start": sent - timedelta(days=7),
                        "window_end": sent,
                        "created_at": sent,
                        "sent_at": sent,
                        "message_id": f"<bench-{subscriber_id}-{d}@example.org>",
                        "item_count": items,
                        "attempts": 1,
                    }
                )
        connection.execute(sa.insert(Digest.__table__), digest_rows)  # type: ignore[attr-defined]
        item_rows = []
        for digest_id, subscriber_id in connection.execute(
            sa.text("SELECT id, subscriber_id FROM digest ORDER BY subscriber_id, id")
        ):
            item_rows.append((digest_id, subscriber_id))
        by_subscriber: dict[int, list[int]] = {}
        for digest_id, subscriber_id in item_rows:
            by_subscriber.setdefault(subscriber_id, []).append(digest_id)
        rows = []
        for subscriber_id, digest_ids in by_subscriber.items():
            picked = rng.sample(paper_ids, items * len(digest_ids))
            for k, digest_id in enumerate(digest_ids):
                for rank in range(items):
                    rows.append(
                        {
                            "digest_id": digest_id,
                            "subscriber_id": subscriber_id,
                            "paper_id": picked[k * items + rank],
                            "rank": rank + 1,
                            "score": 1.0 - rank / 100,
                            "reason": "matched language model",
                            "matched": ["language model"],
                        }
                    )
        connection.execute(sa.insert(DigestItem.__table__), rows)  # type: ignore[attr-defined]
    db.dispose_engines()
    (data_dir / "tokens.json").write_text(json.dumps(tokens))


# Orchestration ------------------------------------------------------------------------------


@dataclass
class Checkout:
    label: str
    path: Path
    hide: tuple[str, ...] = ()  # modules made unimportable: uvicorn then falls back

    def env(self, data_dir: Path, database_url: str, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
        paths = [str(self.path)]  # before the editable install: this checkout's code
        if self.hide:
            hidden = data_dir / "hidden-modules"
            hidden.mkdir(exist_ok=True)
            for module in self.hide:
                (hidden / f"{module}.py").write_text(f"raise ImportError('{module} hidden')\n")
            paths.insert(0, str(hidden))
        env.update(
            PYTHONPATH=os.pathsep.join(paths),
            DIGEST_DATA_DIR=str(data_dir),
            DIGEST_DATABASE_URL=database_url,
            DIGEST_SECRET_KEY=SECRET,
            DIGEST_BASE_URL=f"http://127.0.0.1:{port}",
            DIGEST_LOG_LEVEL="WARNING",
        )
        return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'digest.sqlite3'}"
        return
    import sqlalchemy as sa  # noqa: PLC0415 - only for this backend

    schema = f"bench_{secrets.token_hex(5)}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def server(checkout: Checkout, data_dir: Path, database_url: str) -> Iterator[str]:
    """``digest serve`` of ``checkout`` on a free loopback port; stopped on exit."""
    port = free_port()
    log = (data_dir / "serve.log").open("wb")
    command = [str(Path(sys.executable).parent / "digest"), "serve", "--host", "127.0.0.1"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=checkout.env(data_dir, database_url, port),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"digest serve exited: {(data_dir / 'serve.log').read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("digest serve did not answer /healthz in time")
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def lua_script(paths: list[str], etags: list[str] | None, expected: int) -> str:
    """A wrk script: request ``paths`` in turn (with their ETags when given) and count the
    answers whose status is not ``expected``."""
    lines = ["local threads = {}", "function setup(thread) table.insert(threads, thread) end"]
    lines.append("unexpected = 0")
    if len(paths) == 1:  # wrk's own prebuilt request: the cheapest client
        lines.append(f"wrk.path = {json.dumps(paths[0])}")
        if etags is not None:
            lines.append(f'wrk.headers["If-None-Match"] = {json.dumps(etags[0])}')
    else:
        lines.append("local paths = {" + ",".join(json.dumps(p) for p in paths) + "}")
        if etags is not None:
            lines.append("local tags = {" + ",".join(json.dumps(t) for t in etags) + "}")
        header = '{["If-None-Match"] = tags[i]}' if etags is not None else "nil"
        lines += [
            "local i = 0",
            "function init(args) i = math.random(#paths) end",
            "function request()",
            "  i = i % #paths + 1",
            f'  return wrk.format("GET", paths[i], {header})',
            "end",
        ]
    lines += [
        f"function response(status) if status ~= {expected} then"
        " unexpected = unexpected + 1 end end",
        "function done()",
        "  local n = 0",
        '  for _, t in ipairs(threads) do n = n + t:get("unexpected") end',
        '  io.write(string.format("unexpected statuses: %d\\n", n))',
        "end",
    ]
    return "\n".join(lines) + "\n"


def run_wrk(args: argparse.Namespace, url: str, script: Path) -> float:
    """req/s of one wrk run; fails on socket errors or unexpected statuses."""
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections)]
    command += ["-d", f"{args.duration}s", "-s", str(script), url]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=args.duration + 30, check=True
    )
    out = done.stdout
    if "Socket errors" in out or "unexpected statuses: 0" not in out:
        raise RuntimeError(f"wrk saw errors or unexpected statuses:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{out}")
    return float(match.group(1))


def measure(args: argparse.Namespace, checkout: Checkout) -> dict[str, float]:
    """Seed, serve and run every case once for ``checkout``."""
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="feeds-bench-") as tmp:
        data_dir = Path(tmp)
        with database(args.backend, data_dir) as database_url:
            started = time.perf_counter()
            seed_args = ["--seed", str(data_dir), "--database-url", database_url]
            seed_args += ["--subscribers", str(args.subscribers), "--digests", str(args.digests)]
            subprocess.run(
                [sys.executable, __file__, *seed_args, "--items", str(args.items)],
                env=checkout.env(data_dir, database_url, 0),
                check=True,
                timeout=900,
            )
            seconds = time.perf_counter() - started
            print(f"  {checkout.label}: seeded in {seconds:.1f} s", flush=True)
            tokens = json.loads((data_dir / "tokens.json").read_text())
            with server(checkout, data_dir, database_url) as url:
                paths = [f"/feeds/{token}.atom" for token in tokens]
                etags = []
                with httpx.Client(base_url=url, timeout=30) as client:
                    for path in paths:
                        response = client.get(path)
                        response.raise_for_status()
                        etags.append(response.headers["etag"])
                    size = len(client.get(paths[0]).content)
                    check = client.get(paths[0], headers={"If-None-Match": etags[0]})
                    assert check.status_code == 304, check.status_code
                print(f"  {checkout.label}: serving at {url}; Atom feed {size} bytes", flush=True)
                script_dir = data_dir / "wrk"
                script_dir.mkdir()
                for case in args.cases:
                    many, kind = case.split("-")
                    chosen = slice(None) if many == "many" else slice(0, 1)
                    script = script_dir / f"{case}.lua"
                    script.write_text(
                        lua_script(
                            paths[chosen],
                            etags[chosen] if kind == "304" else None,
                            304 if kind == "304" else 200,
                        )
                    )
                    results[case] = run_wrk(args, url, script)
                    print(f"  {checkout.label}: {case} {results[case]:.0f} req/s", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--digests", type=int, default=3, help="Sent digests per subscriber.")
    parser.add_argument("--items", type=int, default=15, help="Papers per digest.")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per wrk run.")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--baseline", type=Path, help="Another checkout to compare against.")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--without-speedups",
        action="store_true",
        help="Also run ours with httptools and uvloop hidden (uvicorn's h11 and asyncio).",
    )
    parser.add_argument("--seed", type=Path, help=argparse.SUPPRESS)  # child: seed and exit
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(args.seed, args.database_url, args.subscribers, args.digests, args.items)
        return
    args.cases = [c for c in args.cases.split(",") if c]
    if unknown := set(args.cases) - set(CASES):
        parser.error(f"unknown cases {sorted(unknown)}; choose from {', '.join(CASES)}")
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    checkouts = [Checkout("ours", ROOT)]
    if args.without_speedups:
        checkouts.append(Checkout("ours, h11+asyncio", ROOT, hide=SPEEDUPS))
    if args.baseline:  # as its pyproject installs it: uvicorn without httptools and uvloop
        checkouts.append(Checkout("baseline", args.baseline.resolve(), hide=SPEEDUPS))
    print(
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{args.backend}; {args.subscribers} subscribers x {args.digests} digests x "
        f"{args.items} items; wrk -t{args.threads} -c{args.connections} -d{args.duration}s",
        flush=True,
    )
    runs: dict[str, list[dict[str, float]]] = {c.label: [] for c in checkouts}
    for _ in range(args.repeat):
        for checkout in checkouts:  # interleaved: both see the same background load
            runs[checkout.label].append(measure(args, checkout))
    header = "| case | " + " | ".join(f"{c.label} req/s" for c in checkouts) + " |"
    print("\n" + header + "\n|" + "---|" * (len(checkouts) + 1))
    for case in args.cases:
        cells = []
        for checkout in checkouts:
            values = [run[case] for run in runs[checkout.label]]
            low, high = min(values), max(values)
            cells.append(f"{low:,.0f}" if low == high else f"{low:,.0f}-{high:,.0f}")
        print(f"| {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
