"""Crash safety, measured: SIGKILL a sending run at random moments, then count.

    .venv/bin/python bench/crash_trials.py [--subscribers 2000] [--trials 20]
        [--worker-trials 5] [--postgres-url URL] [--seed 1]

Setup (once): a store of ``--subscribers`` weekly subscribers and 2,000 papers (the same
synthetic data as bench/run_scale.py), and a recording SMTP sink in a child process that
appends every Message-ID it accepts to a log (it is never killed).

Run trials (SQLite, ``digest run`` processes): each starts from a copy of the store, starts
``digest run --now`` over SMTP, SIGKILLs it once the sink has accepted a random share
(5–95 %) of the messages, then runs an ordinary ``digest run`` and reports, per trial:

- **lost**: digests that should have reached their subscriber and did not (must be 0);
- **duplicates**: Message-IDs the sink accepted more than once (only messages in flight at
  the kill may come twice: handed over, accepted, not yet recorded — at most the pipeline's
  flush window, FLUSH_EVERY messages or FLUSH_SECONDS);
- the follow-up run's time and what it sent: it must deliver the rest at once, not after a
  stale-claim delay (the killed run's claimant is known dead: same host, pid gone).

Worker trials (PostgreSQL + procrastinate, ``--worker-trials``): two ``digest worker``
processes deliver a run's queued batches; one is SIGKILLed at a random moment; the other
finishes; same counts, plus the time from the kill to the last digest sent.

Concurrency check: a run is started, and while it sends a second ``digest run`` starts with
a clock 16 minutes later (past the old fixed stale-claim delay): nothing is sent twice.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run_scale

from digest.delivery.pipeline import FLUSH_EVERY, FLUSH_SECONDS
from digest.store import db
from digest.store.models import Digest

RUN_AT = run_scale.RUN_AT
DIGEST = str(Path(sys.executable).with_name("digest"))


# The recording sink (a child process) ------------------------------------------------------


def sink_main(port_file: str, log_file: str) -> None:
    """Accept everything; append "<Message-ID>\\t<recipient>" per message to ``log_file``."""
    import asyncio  # noqa: PLC0415 - only the sink process needs these

    from aiosmtpd.controller import Controller  # noqa: PLC0415

    log = open(log_file, "a", encoding="utf-8")  # noqa: PTH123, SIM115 - open for the process' life

    class Recorder:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
            head = (
                bytes(envelope.original_content).split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
            )
            message_id = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in head.split("\r\n")
                    if line.lower().startswith("message-id:")
                ),
                "?",
            )
            log.write(f"{message_id}\t{','.join(envelope.rcpt_tos)}\n")
            log.flush()
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Recorder(), hostname="127.0.0.1", port=port)
    controller.start()
    Path(port_file).write_text(str(port))
    try:
        asyncio.get_event_loop_policy()  # keep the main thread idle until killed
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
    finally:
        controller.stop()
        log.close()


@contextmanager
def recording_sink(directory: Path) -> Any:
    port_file, log_file = directory / "sink.port", directory / "sink.log"
    log_file.touch()
    process = subprocess.Popen(
        [sys.executable, __file__, "--sink", str(port_file), str(log_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not port_file.exists():
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the recording sink did not start")
        time.sleep(0.05)
    try:
        yield int(port_file.read_text()), log_file
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def received(log_file: Path, since: int) -> list[str]:
    """Message-IDs the sink accepted after byte offset ``since``."""
    with log_file.open(encoding="utf-8") as handle:
        handle.seek(since)
        return [line.split("\t", 1)[0] for line in handle if line.strip()]


# One trial ---------------------------------------------------------------------------------


@dataclass
class Trial:
    number: int
    expected: int
    killed_after: int
    lost: int
    duplicates: int
    follow_up_sent: int
    follow_up_seconds: float
    left_unsent: int


def env_for(
    data_dir: Path, port: int, database_url: str | None = None, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_DATA_DIR=str(data_dir),
        DIGEST_BASE_URL="https://digest.example.org",
        DIGEST_MAIL_FROM="Paper digest <digest@digest.example.org>",
        DIGEST_DELIVERY="smtp",
        DIGEST_SMTP_HOST="127.0.0.1",
        DIGEST_SMTP_PORT=str(port),
        DIGEST_SMTP_RETRY_WAIT="0",
        DIGEST_LOG_LEVEL="WARNING",
        **extra,
    )
    if database_url:
        env["DIGEST_DATABASE_URL"] = database_url
    return env


def wait_lines(log_file: Path, since: int, count: int, process: subprocess.Popen[bytes]) -> int:
    while True:
        got = len(received(log_file, since))
        if got >= count or process.poll() is not None:
            return got
        time.sleep(0.002)


def outcome(settings: Any, log_file: Path, since: int) -> tuple[int, int, int, int]:
    """(expected, lost, duplicates, left unsent) after a trial."""
    with db.transaction(settings) as session:
        rows = session.execute(
            sa.select(Digest.subscriber_id, Digest.period_key, Digest.status, Digest.item_count)
        ).all()
    db.dispose_engines()
    from digest.delivery.message import message_id_for  # noqa: PLC0415
    from digest.digests.ledger import digest_key  # noqa: PLC0415

    wanted = {
        message_id_for(digest_key(sid, key), "digest.example.org")
        for sid, key, status, items in rows
        if status != "empty"
    }
    counts = Counter(received(log_file, since))
    lost = len(wanted - set(counts))
    duplicates = sum(n - 1 for n in counts.values())
    unsent = sum(1 for *_, status, _ in rows if status not in ("sent", "empty"))
    return len(wanted), lost, duplicates, unsent


def run_trial(
    number: int, base: Path, work: Path, port: int, log_file: Path, rng: random.Random
) -> Trial:
    data = work / f"trial-{number}"
    shutil.copytree(base, data)
    settings = run_scale.make_bench_settings(data, None, port)
    since = log_file.stat().st_size
    env = env_for(data, port)
    expected_guess = int((base / "expected").read_text())
    target = max(1, int(expected_guess * rng.uniform(0.05, 0.95)))
    errors = (work / f"trial-{number}.log").open("wb")
    process = subprocess.Popen(
        [DIGEST, "run", "--now", RUN_AT.isoformat(), "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )
    got = wait_lines(log_file, since, target, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    errors.close()
    started = time.perf_counter()
    follow = subprocess.run(
        [DIGEST, "run", "--now", RUN_AT.isoformat(), "--json"],
        env=env,
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    import json  # noqa: PLC0415

    sent = (
        json.loads(follow.stdout)["sent"] if follow.returncode in (0, 1) and follow.stdout else -1
    )
    expected, lost, duplicates, unsent = outcome(settings, log_file, since)
    shutil.rmtree(data, ignore_errors=True)
    return Trial(number, expected, got, lost, duplicates, sent, seconds, unsent)


# Main ---------------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, work: Path) -> Path:
    """The store every trial copies: papers, subscribers, no digest yet."""
    base = work / "base"
    settings = run_scale.make_bench_settings(base, None, None)
    run_scale.setup(
        argparse.Namespace(subscribers=args.subscribers, papers=2000, api_sample=100), settings
    )
    db.dispose_engines()
    return base


def count_expected(base: Path, work: Path) -> int:
    """How many digests a run over the base store sends (to time the kills)."""
    probe = work / "probe"
    shutil.copytree(base, probe)
    settings = run_scale.make_bench_settings(probe, None, None)
    from digest.runner import run_digests  # noqa: PLC0415

    report = run_digests(settings, now=RUN_AT)
    db.dispose_engines()
    shutil.rmtree(probe)
    return report.sent


def print_trials(title: str, trials: list[Trial]) -> None:
    print(f"\n{title}\n")
    columns = (
        "trial",
        "messages",
        "killed after",
        "lost",
        "duplicates",
        "follow-up sent",
        "follow-up time",
        "left unsent",
    )
    print("| " + " | ".join(columns) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for t in trials:
        print(
            f"| {t.number} | {t.expected} | {t.killed_after} | {t.lost} | {t.duplicates} | "
            f"{t.follow_up_sent} | {t.follow_up_seconds:.1f} s | {t.left_unsent} |"
        )
    print(
        f"\nlost in all: {sum(t.lost for t in trials)}; duplicates in all: "
        f"{sum(t.duplicates for t in trials)} (max {max(t.duplicates for t in trials)} per "
        f"trial; the flush window is {FLUSH_EVERY} messages or {FLUSH_SECONDS} s); "
        f"unsent after the follow-up: {sum(t.left_unsent for t in trials)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--worker-trials", type=int, default=5)
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sink", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink_main(*args.sink)
        return
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="crash-trials-") as temp:
        work = Path(temp)
        print(f"preparing {args.subscribers} subscribers...", file=sys.stderr)
        base = prepare(args, work)
        expected = count_expected(base, work)
        (base / "expected").write_text(str(expected))
        with recording_sink(work) as (port, log_file):
            trials = []
            for number in range(1, args.trials + 1):
                trial = run_trial(number, base, work, port, log_file, rng)
                print(f"  trial {number}: {trial}", file=sys.stderr)
                trials.append(trial)
            print_trials(
                f"digest run, SIGKILL while sending ({args.subscribers} subscribers, SQLite)",
                trials,
            )
            if args.worker_trials:
                worker_trials(args, work, port, log_file, rng, expected)
            late_second_run(base, work, port, log_file)


@contextmanager
def postgres_schema(url: str) -> Any:
    """A fresh schema on the server; the URL that uses it. Dropped at the end."""
    schema = f"crash_{random.randrange(16**8):08x}"
    admin = sa.create_engine(url)
    with admin.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        db.dispose_engines()
        with admin.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def worker_trials(
    args: argparse.Namespace, work: Path, port: int, log_file: Path, rng: random.Random,
    expected: int,
) -> None:  # fmt: skip
    """Two workers deliver a queued run; one is SIGKILLed at a random moment."""
    with postgres_schema(args.postgres_url) as url:
        data = work / "pg"
        settings = run_scale.make_bench_settings(data, url, port)
        run_scale.setup(
            argparse.Namespace(subscribers=args.subscribers, papers=2000, api_sample=100),
            settings,
        )
        env = env_for(data, port, url, DIGEST_QUEUE="procrastinate", DIGEST_DELIVERY_BATCH="100")
        trials = []
        for number in range(1, args.worker_trials + 1):
            with db.transaction(settings) as session:  # a fresh week each trial
                session.execute(sa.text("DELETE FROM digest"))
                if session.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar():
                    session.execute(sa.text("DELETE FROM procrastinate_jobs"))
            db.dispose_engines()
            since = log_file.stat().st_size
            workers = [
                subprocess.Popen(
                    [DIGEST, "worker", "--concurrency", "1"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(2)
            ]
            try:
                run = subprocess.run(
                    [DIGEST, "run", "--now", RUN_AT.isoformat()],
                    env=env,
                    capture_output=True,
                    check=False,
                )
                if run.returncode not in (0, 1):
                    raise RuntimeError(run.stderr.decode()[-2000:])
                target = max(1, int(expected * rng.uniform(0.05, 0.95)))
                got = wait_lines(log_file, since, target, workers[0])
                victim = rng.choice(workers)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                killed = time.perf_counter()
                deadline = killed + 180
                while time.perf_counter() < deadline:
                    _, _, _, unsent = outcome(settings, log_file, since)
                    if unsent == 0:
                        break
                    time.sleep(0.5)
                took = time.perf_counter() - killed
            finally:
                for process in workers:
                    if process.poll() is None:
                        process.send_signal(signal.SIGTERM)
                for process in workers:
                    process.wait(timeout=60)
            total, lost, duplicates, unsent = outcome(settings, log_file, since)
            trials.append(
                Trial(number, total, got, lost, duplicates, -1, took, unsent)
            )  # no follow-up run: the survivor finishes
            print(f"  worker trial {number}: {trials[-1]}", file=sys.stderr)
        print_trials(
            f"digest worker x2 on PostgreSQL, one SIGKILLed ({args.subscribers} subscribers; "
            "follow-up time = from the kill to the last digest sent)",
            trials,
        )


def late_second_run(base: Path, work: Path, port: int, log_file: Path) -> None:
    """Run A sends; run B starts meanwhile with a clock 16 minutes later: no duplicate."""
    data = work / "late"
    shutil.copytree(base, data)
    settings = run_scale.make_bench_settings(data, None, port)
    since = log_file.stat().st_size
    env = env_for(data, port)
    first = subprocess.Popen(
        [DIGEST, "run", "--now", RUN_AT.isoformat()],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_lines(log_file, since, 50, first)
    later = (RUN_AT + timedelta(minutes=16)).isoformat()
    second = subprocess.run(
        [DIGEST, "run", "--now", later], env=env, capture_output=True, check=False
    )
    first.wait()
    expected, lost, duplicates, unsent = outcome(settings, log_file, since)
    print("\nA second run with a clock 16 minutes later, started while the first sends\n")
    print("| messages | lost | duplicates | unsent | second run exit |")
    print("|---|---|---|---|---|")
    print(f"| {expected} | {lost} | {duplicates} | {unsent} | {second.returncode} |")
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
