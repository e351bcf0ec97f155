"""How close the SMTP pool comes to what the wire allows on this machine.

    .venv/bin/python bench/smtp_ceiling.py [--messages 3000] [--size 20000]
        [--connections 4] [--repeats 3] [--port PORT]

A discarding sink (``counting_sink.CountingSink`` under aiosmtpd) runs in a child process
on loopback (as a real MTA would, on its own core), unless ``--port`` names a sink already
running. The same prebuilt messages (``--size`` bytes each, ASCII lines of 76 characters,
CRLF) are sent twice per round, side by side:

- the ceiling: a plain smtplib loop, ``--connections`` threads each with one connection,
  ``sendmail`` on its share of the messages (no queue, no bookkeeping);
- the pool: :class:`digest.delivery.pool.SmtpPool` with the same connection count, used
  two ways: ``submit`` + ``collect`` in one thread, as ``delivery/pipeline.py`` does, and
  ``send_all`` (a feeder thread, outcomes streamed to the reader).

Each is timed from the first connection to the last QUIT (wall clock: messages/s), and
the client's CPU time (this process, all threads) is divided by the messages: the pool's
own cost per message next to smtplib's, a number that other load on the machine disturbs
far less than the rate. Each of the ``--repeats`` rounds starts with another of the three.

``bench/run_scale.py`` calls :func:`discarding_sink` and :func:`compare` to print the
ceiling next to the run's own rate.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from digest.delivery.base import Outgoing
from digest.delivery.pool import SmtpPool

ENVELOPE_FROM = "bounce@digest.example.org"
HOSTNAME = "bench.digest.example.org"


@contextlib.contextmanager
def discarding_sink(directory: Path | None = None) -> Iterator[int]:
    """A discarding sink (:class:`counting_sink.CountingSink`: aiosmtpd, nothing kept but
    counts) in a child process on loopback; yields its port."""
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        log = stack.enter_context((directory / "smtp-sink.log").open("wb"))
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "counting_sink.CountingSink"]
        bench = str(Path(__file__).resolve().parent)
        path = os.pathsep.join(filter(None, (bench, os.environ.get("PYTHONPATH"))))
        server = subprocess.Popen(
            [*command, "-l", f"127.0.0.1:{port}"],
            stdout=log,
            stderr=log,
            env={**os.environ, "PYTHONPATH": path},
        )
        try:
            for _ in range(100):
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                    break
                time.sleep(0.1)
            else:
                raise SystemExit("the SMTP sink did not start within 10 s")
            yield port
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def prebuilt_messages(count: int, size: int) -> list[Outgoing]:
    """``count`` distinct messages of ``size`` bytes (headers + 76-column body, CRLF)."""
    messages = []
    for n in range(count):
        recipient, message_id = f"reader{n}@example.com", f"<bench-{n}@digest.example.org>"
        head = (
            f"From: Paper digest <digest@digest.example.org>\r\nTo: {recipient}\r\n"
            f"Subject: Your papers, part {n}\r\nMessage-ID: {message_id}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        ).encode()
        line = (f"paper {n} " + "lorem ipsum dolor sit amet " * 3)[:76].encode() + b"\r\n"
        body = line * max(1, (size - len(head)) // len(line))
        messages.append(Outgoing(n, head + body, ENVELOPE_FROM, recipient, message_id))
    return messages


@dataclass(frozen=True)
class Timing:
    rate: float  # messages per second, wall clock
    cpu_us: float  # client CPU microseconds per message (every thread of this process)


def _timing(count: int, wall: float, cpu: float) -> Timing:
    return Timing(count / wall, cpu / count * 1e6)


def smtplib_rate(port: int, messages: Sequence[Outgoing], connections: int) -> Timing:
    """A plain smtplib loop over ``connections`` threads."""
    failures: list[BaseException] = []

    def send(share: Sequence[Outgoing]) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, local_hostname=HOSTNAME, timeout=30) as conn:
                for message in share:
                    conn.sendmail(message.envelope_from, [message.recipient], message.data)
        except (smtplib.SMTPException, OSError) as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=send, args=(messages[i::connections],)) for i in range(connections)
    ]
    start, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if failures:
        raise SystemExit(f"smtplib loop failed: {failures[0]}")
    return _timing(len(messages), wall, cpu)


def pool_rate(
    port: int, messages: Sequence[Outgoing], connections: int, *, mode: str = "collect"
) -> Timing:
    """SmtpPool with ``connections`` connections: ``collect`` submits each message and
    collects what is answered, in one thread, as ``delivery/pipeline.py`` does; ``stream``
    feeds ``send_all`` from its thread and reads outcomes as they come."""
    start, cpu = time.perf_counter(), time.process_time()
    with SmtpPool(
        host="127.0.0.1", port=port, connections=connections, local_hostname=HOSTNAME
    ) as pool:
        if mode == "stream":
            outcomes = list(pool.send_all(messages))
        else:
            outcomes = []
            for message in messages:
                pool.submit(message)
                outcomes.extend(pool.collect())
            outcomes.extend(pool.collect(wait=True))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    sent = sum(outcome.status == "sent" for outcome in outcomes)
    if sent != len(messages):
        raise SystemExit(f"the pool sent {sent} of {len(messages)} messages")
    return _timing(len(messages), wall, cpu)


CONTENDERS = ("smtplib", "collect", "stream")


@dataclass(frozen=True)
class Round:
    first: str
    ceiling: Timing  # plain smtplib
    collect: Timing  # SmtpPool, submit + collect
    stream: Timing  # SmtpPool, send_all

    def ratio(self, pool: Timing) -> float:
        return pool.rate / self.ceiling.rate


def compare(
    port: int, *, messages: int = 3000, size: int = 20_000, connections: int = 4, repeats: int = 3
) -> list[Round]:
    """``repeats`` rounds of (plain smtplib, pool two ways) over the same prebuilt messages,
    each round starting with another of the three."""
    batch = prebuilt_messages(messages, size)
    smtplib_rate(port, batch[: connections * 20], connections)  # warm-up: imports, sink
    rounds = []
    for n in range(repeats):
        order = CONTENDERS[n % 3 :] + CONTENDERS[: n % 3]
        timings: dict[str, Timing] = {}
        for name in order:
            if name == "smtplib":
                timings[name] = smtplib_rate(port, batch, connections)
            else:
                timings[name] = pool_rate(port, batch, connections, mode=name)
        rounds.append(Round(order[0], timings["smtplib"], timings["collect"], timings["stream"]))
    return rounds


def print_rounds(rounds: Sequence[Round], *, messages: int, size: int, connections: int) -> None:
    print(f"{messages} messages of {size:,} bytes, {connections} connections, loopback sink")
    print(
        "| round (first) | plain smtplib | pool, submit + collect | pool, send_all "
        "| client CPU per message: smtplib / collect / send_all |"
    )
    print("|---|---|---|---|---|")
    for n, r in enumerate(rounds, 1):
        print(
            f"| {n} ({r.first}) | {r.ceiling.rate:,.0f} msg/s "
            f"| {r.collect.rate:,.0f} msg/s ({r.ratio(r.collect):.0%}) "
            f"| {r.stream.rate:,.0f} msg/s ({r.ratio(r.stream):.0%}) "
            f"| {r.ceiling.cpu_us:,.0f} / {r.collect.cpu_us:,.0f} / {r.stream.cpu_us:,.0f} µs |"
        )
    for mode in ("collect", "stream"):
        ratios = sorted(r.ratio(getattr(r, mode)) for r in rounds)
        median = ratios[len(ratios) // 2]
        print(f"pool ({mode}) / ceiling: {ratios[0]:.0%} – {ratios[-1]:.0%} (median {median:.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--size", type=int, default=20_000, help="bytes per message")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--port", type=int, help="a discarding sink already listening")
    args = parser.parse_args()
    python = platform.python_version()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {python}")
    with contextlib.ExitStack() as stack:
        port = args.port or stack.enter_context(discarding_sink())
        rounds = compare(
            port,
            messages=args.messages,
            size=args.size,
            connections=args.connections,
            repeats=args.repeats,
        )
    print_rounds(rounds, messages=args.messages, size=args.size, connections=args.connections)


if __name__ == "__main__":
    main()
