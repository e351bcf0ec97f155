"""Scale-out throughput: one weekly run's delivery by 1, then 2, `digest worker` processes.

    .venv/bin/python bench/workers_scale.py [--subscribers 5000] [--workers 1 2]
        [--postgres-url URL] [--batch 500]

PostgreSQL + procrastinate (``DIGEST_QUEUE=procrastinate``). For each worker count, from
the same starting point (a fresh schema with the same papers and subscribers, no digest):
``digest run`` records the week's digests and defers one job per batch in the same
transaction; then N ``digest worker --burst`` processes (each one job at a time) deliver
everything over SMTP to a recording sink (a child process logging each Message-ID) and exit
when the queue is empty. Printed side by side: delivery messages/s per worker count, and the
sink's check that every digest arrived exactly once.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import crash_trials
import run_scale

from digest.store import db


def one(args: argparse.Namespace, workers: int, work: Path, port: int, log_file: Path) -> str:
    with crash_trials.postgres_schema(args.postgres_url) as url:
        data = work / f"w{workers}"
        settings = run_scale.make_bench_settings(data, url, port)
        run_scale.setup(
            argparse.Namespace(subscribers=args.subscribers, papers=2000, api_sample=100),
            settings,
        )
        db.dispose_engines()
        env = crash_trials.env_for(
            data, port, url, DIGEST_QUEUE="procrastinate", DIGEST_DELIVERY_BATCH=str(args.batch)
        )
        since = log_file.stat().st_size
        started = time.perf_counter()
        run = subprocess.run(
            [crash_trials.DIGEST, "run", "--now", run_scale.RUN_AT.isoformat()],
            env=env,
            capture_output=True,
            check=False,
        )
        recorded = time.perf_counter() - started
        if run.returncode not in (0, 1):
            raise SystemExit(run.stderr.decode()[-3000:])
        started = time.perf_counter()
        processes = [
            subprocess.Popen(
                [crash_trials.DIGEST, "worker", "--burst", "--concurrency", "1"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        for process in processes:
            process.wait(timeout=args.timeout)
        delivered = time.perf_counter() - started
        expected, lost, duplicates, unsent = crash_trials.outcome(settings, log_file, since)
        received = len(crash_trials.received(log_file, since))
        once = Counter(crash_trials.received(log_file, since))
        exactly = lost == 0 and duplicates == 0 and unsent == 0 and len(once) == expected
        return (
            f"| {workers} | {expected} | {recorded:.1f} s | {delivered:.1f} s | "
            f"**{received / delivered:.0f}** | {lost} / {duplicates} / {unsent} | "
            f"{'yes' if exactly else 'NO'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--postgres-url", default=run_scale.POSTGRES_URL)
    args = parser.parse_args()
    for name in [n for n in os.environ if n.startswith("DIGEST_")]:
        del os.environ[name]
    with tempfile.TemporaryDirectory(prefix="workers-") as temp:
        work = Path(temp)
        rows = []
        with crash_trials.recording_sink(work) as (port, log_file):
            for count in args.workers:
                print(f"{count} worker(s)...", file=sys.stderr)
                rows.append(one(args, count, work, port, log_file))
    print(f"\n{args.subscribers} subscribers, batches of {args.batch}, SMTP to a recording sink\n")
    print(
        "| workers | messages | `digest run` (record + defer) | delivery | messages/s | "
        "lost / duplicates / unsent | each exactly once |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
