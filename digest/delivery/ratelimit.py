"""Sliding-window rate limits shared by the connections of a pool.

Relays cap what a client may send ("at most 14 messages per second", "10,000 per hour").
A :class:`SlidingWindow` keeps the times of the last ``limit`` sends: the next may go once
the oldest of them is ``window`` seconds old, so no interval of ``window`` seconds ever
holds more than ``limit`` sends (unlike a fixed window, which allows twice the limit across
a boundary). :class:`RateLimiter` combines the windows and hands out send slots in order,
under a lock, to any number of threads; each thread then waits for its slot on its own.

Times come from an injected clock (``time.monotonic`` by default), so the limiter is
tested with a fake one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

__all__ = ["RateLimiter", "SlidingWindow"]


class SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds. Not thread-safe on its own."""

    def __init__(self, limit: int, window: float, *, history: Iterable[float] = ()) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate window needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        # Only the last `limit` events matter; maxlen drops older ones as new ones arrive.
        self._log: deque[float] = deque(sorted(history)[-limit:], maxlen=limit)

    def earliest(self, at: float) -> float:
        """The first time not before ``at`` when one more event keeps within the limit."""
        if len(self._log) < self.limit:
            return at
        return max(at, self._log[0] + self.window)

    def record(self, at: float) -> None:
        """Count an event at ``at`` (never earlier than the events already recorded)."""
        self._log.append(at)


class RateLimiter:
    """Messages per second and per hour, shared by every connection of a pool.

    ``sent_before`` are the ages in seconds of messages sent before this limiter existed
    (an earlier run within the hour), so a new run does not start with a full hour's quota.
    """

    def __init__(
        self,
        *,
        per_second: int | None = None,
        per_hour: int | None = None,
        sent_before: Iterable[float] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        ages = [age for age in sent_before if age >= 0]
        self._windows = [
            SlidingWindow(limit, window, history=[now - age for age in ages if age < window])
            for limit, window in ((per_second, 1.0), (per_hour, 3600.0))
            if limit is not None
        ]
        self._last = now

    @property
    def limited(self) -> bool:
        """Whether any limit is set (an unlimited limiter never waits)."""
        return bool(self._windows)

    def reserve(self, *, max_wait: float = float("inf")) -> float | None:
        """Take the next send slot; return the seconds to wait for it (0: send now).

        When the slot is more than ``max_wait`` seconds away (an hourly quota used up),
        nothing is taken and None is returned: the caller defers the message.
        """
        if not self._windows:
            return 0.0
        with self._lock:
            now = self._clock()
            # Slots are handed out in time order, which keeps every window's log sorted.
            at = max(now, self._last)
            for window in self._windows:
                at = window.earliest(at)  # moving later never breaks an earlier window
            if at - now > max_wait:
                return None
            for window in self._windows:
                window.record(at)
            self._last = at
            return at - now
