"""Wall-clock deadlines on blocking socket I/O, enforced from a watchdog thread.

A socket timeout bounds each ``recv``, not a reply: a relay that trickles ``250-``
continuation lines, or one byte at a time, resets it with every byte and holds a connection
forever. Each connection therefore arms a :class:`Guard` with an absolute deadline around
every transaction; the :class:`Watchdog` thread checks the guards a few times a second and
shuts down the socket of one past its deadline, which ends the blocked call in its own
thread with an error (the guard then reads ``expired``).

``socket.socket.shutdown`` is called on the socket level even for a TLS socket: the
``SSLSocket`` override would also drop its TLS object under the reading thread's feet.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Guard", "Watchdog"]


class _HasSocket(Protocol):
    sock: socket.socket | None


class Guard:
    """One connection's current deadline. ``arm`` and ``disarm`` around each transaction."""

    __slots__ = ("_conn", "_deadline", "_lock", "expired")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadline: float | None = None
        self._conn: _HasSocket | None = None
        self.expired = False

    def arm(self, conn: _HasSocket, deadline: float) -> None:
        """Shut ``conn``'s socket down (whichever it is by then) once ``deadline`` passes."""
        with self._lock:
            self._conn, self._deadline, self.expired = conn, deadline, False

    def disarm(self) -> bool:
        """Stop watching; return whether the deadline had passed (the socket is shut)."""
        with self._lock:
            self._conn, self._deadline = None, None
            return self.expired

    def expire_if_due(self, now: float) -> None:
        with self._lock:
            if self._deadline is None or now < self._deadline or self._conn is None:
                return
            self.expired, self._deadline = True, None
            sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to stop
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Watchdog:
    """A thread that enforces every registered guard's deadline, ``tick`` seconds apart."""

    def __init__(self, *, tick: float = 0.05, clock: Callable[[], float] = time.monotonic) -> None:
        self._tick = tick
        self._clock = clock
        self._guards: list[Guard] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def guard(self) -> Guard:
        """A new guard watched by this watchdog (register them all before :meth:`start`)."""
        guard = Guard()
        self._guards.append(guard)
        return guard

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="smtp-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._tick):
            now = self._clock()
            for guard in self._guards:
                guard.expire_if_due(now)
