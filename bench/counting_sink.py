"""An aiosmtpd handler that discards messages and counts them: the benches' SMTP sink.

Run as ``python -m aiosmtpd -n -c counting_sink.CountingSink -l 127.0.0.1:PORT`` with
``bench/`` on ``PYTHONPATH`` (``smtp_ceiling.discarding_sink`` does). ``NOOP`` answers
``250 <messages> <bytes>``: what the sink has accepted so far, so a bench can read the mean
size of the messages a run actually sent (:func:`sink_counts`).
"""

from __future__ import annotations

import smtplib
from typing import Any


class CountingSink:
    """Accepts every message (250), keeps nothing but the count and the bytes."""

    def __init__(self) -> None:
        self.messages = 0
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages += 1
        self.bytes += len(envelope.original_content or envelope.content or b"")
        return "250 OK"

    async def handle_NOOP(self, server: Any, session: Any, envelope: Any, arg: str) -> str:  # noqa: N802 - aiosmtpd's hook name
        return f"250 {self.messages} {self.bytes}"


def sink_counts(port: int) -> tuple[int, int]:
    """(messages, bytes) the counting sink on ``port`` has accepted."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as connection:
        code, reply = connection.docmd("NOOP")
    if code != 250:
        raise SystemExit(f"the sink answered NOOP with {code} {reply!r}")
    messages, size = reply.split()
    return int(messages), int(size)
