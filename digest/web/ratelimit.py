"""An in-process sliding-window rate limiter with bounded memory.

Used by the subscribe form, per client IP and per address. Each key keeps at most ``limit``
timestamps and at most ``max_keys`` keys are remembered (least recently used ones are
forgotten first), so memory stays bounded whatever an attacker sends. Keys are hashed so no
address is held in memory in clear. One process only: behind several workers each has its
own counts, which still bounds the total at ``workers × limit``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 10_000


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key."""

    def __init__(
        self,
        *,
        limit: int,
        window: float,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0 or max_keys < 1:
            raise ValueError("limit, window and max_keys must be positive")
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._clock = clock
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # sync routes run in a thread pool

    @staticmethod
    def _key(key: str) -> str:
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]

    def hit(self, key: str) -> bool:
        """Record a hit for ``key``; False (and nothing recorded) when over the limit."""
        now = self._clock()
        hashed = self._key(key)
        with self._lock:
            hits = self._hits.get(hashed)
            if hits is None:
                hits = self._hits[hashed] = deque(maxlen=self.limit)
                while len(self._hits) > self.max_keys:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(hashed)
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True

    def __len__(self) -> int:
        """How many keys are remembered (for tests and monitoring)."""
        with self._lock:
            return len(self._hits)
