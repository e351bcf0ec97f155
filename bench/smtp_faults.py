"""What a relay's faults cost a run: the SMTP pool against faulty and broken relays.

    .venv/bin/python bench/smtp_faults.py [--messages 2500] [--connections 4]
        [--timeout 30] [--deadline 60] [--retry-wait 1.0] [--only NAME ...]

Each scenario sends ``--messages`` prebuilt 20 KB messages through
:class:`digest.delivery.pool.SmtpPool` with the production defaults (``smtp_timeout`` 30 s,
``smtp_transaction_timeout`` 60 s, ``smtp_retries`` 3, ``smtp_retry_wait`` 1 s, four
connections) to a relay on loopback (:mod:`digest.testing.faults`,
:mod:`digest.testing.relays`), and prints how long the pool took and what became of the
messages. Before the pool (issue 10, defect C), a dead relay cost 8.4 s per digest with
connections refused and ~130 s with a silent relay, and a trickling one hung the run.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from functools import partial

from smtp_ceiling import prebuilt_messages

from digest.delivery.pool import SmtpPool
from digest.testing.faults import FaultySink
from digest.testing.relays import BrokenRelay

SCENARIOS: dict[str, Callable[[], FaultySink | BrokenRelay]] = {
    "healthy sink": FaultySink,
    "552 at MAIL FROM for 5 %": partial(FaultySink, mail_refusal_percent=5),
    "421 beyond 2 connections": partial(FaultySink, max_connections=2),
    "2 % dropped after the data": partial(FaultySink, data_drop_percent=2),
    "connections refused": partial(BrokenRelay, "refuse"),
    "silent relay": partial(BrokenRelay, "silent"),
    "trickling greeting": partial(BrokenRelay, "trickle-greeting", interval=0.5),
    "trickling EHLO reply": partial(BrokenRelay, "trickle-ehlo", interval=0.5),
    "trickling reply to DATA": partial(BrokenRelay, "trickle-data", interval=0.5),
}


def run(name: str, args: argparse.Namespace) -> None:
    messages = prebuilt_messages(args.messages, 20_000)
    with SCENARIOS[name]() as server:
        start = time.perf_counter()
        with SmtpPool(
            host=server.host,
            port=server.port,
            connections=args.connections,
            timeout=args.timeout,
            transaction_deadline=args.deadline,
            retry_wait=args.retry_wait,
            local_hostname="bench.digest.example.org",
        ) as pool:
            counts = Counter(outcome.status for outcome in pool.send_all(messages))
        elapsed = time.perf_counter() - start
        received = len(server.messages) if isinstance(server, FaultySink) else 0
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    print(f"| {name} | {elapsed:.1f} s | {statuses} | {received} | {pool.stats.retries} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2500)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--retry-wait", type=float, default=1.0)
    parser.add_argument("--only", nargs="*", choices=sorted(SCENARIOS), default=None)
    args = parser.parse_args()
    python = platform.python_version()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {python}")
    print(
        f"{args.messages} messages, {args.connections} connections, timeout {args.timeout:g} s, "
        f"deadline {args.deadline:g} s, retry wait {args.retry_wait:g} s"
    )
    print("| relay | pool took | outcomes | received at the sink | retries |")
    print("|---|---|---|---|---|")
    for name in args.only or SCENARIOS:
        run(name, args)


if __name__ == "__main__":
    main()
