"""The pool's declared policies: retry backoff, the circuit breaker, the 421 throttle.

Each is a small state machine of plain values (times passed in), owned by the pool and
changed under its lock, so each is tested without threads or sockets:

- :class:`RetryPolicy`: how many times a message is retried after a 4xx or a dropped
  connection, and how long to wait before each retry (exponential, capped, with jitter).
- :class:`CircuitBreaker`: opens after ``threshold`` consecutive failures to reach the relay
  (refused, TLS failure, no answer, 421, dropped connections) across all connections; any
  answer from the relay closes the streak. A dropped connection alone never opens it (a
  relay restarting drops every connection at once and is back a second later): the next
  failure to connect, or to get an answer, does. Once open it stays open for the pool's
  life: the rest is deferred to the next run instead of costing hours of retries.
- :class:`Throttle`: a relay that answers 421 ("too many connections", "slow down") gets
  fewer connections (one fewer per 421, never below one) and, for a 421 within a session, a
  pause of every connection with exponential backoff; after ``recovery`` seconds without a
  421 one connection comes back (additive increase, multiplicative-ish decrease).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["CircuitBreaker", "RetryPolicy", "Throttle"]

MAX_RETRY_WAIT = 60.0  # seconds; caps the doubling so a long outage ends in bounded time


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` extra attempts; before retry ``n`` wait ``wait·2^(n-1)`` (capped) + jitter."""

    retries: int = 3
    wait: float = 1.0
    max_wait: float = MAX_RETRY_WAIT
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.retries < 0 or self.wait < 0 or self.max_wait < 0:
            raise ValueError("retries, wait and max_wait must be >= 0")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        base = min(self.max_wait, self.wait * 2.0 ** max(0, attempt - 1))
        # Jitter spreads the retries of several connections that failed together.
        return base + self.rng.uniform(0, self.wait)

    def allows(self, attempts: int) -> bool:
        """Whether a message that failed ``attempts`` times may be tried again."""
        return attempts <= self.retries


class CircuitBreaker:
    """Opens after ``threshold`` consecutive relay failures; stays open once opened."""

    def __init__(self, threshold: int) -> None:
        if threshold < 1:
            raise ValueError("threshold must be >= 1")
        self.threshold = threshold
        self.streak = 0
        self.is_open = False
        self.reason: str | None = None

    def failure(self, reason: str, *, decisive: bool = True) -> bool:
        """Count a failure to reach the relay; True when this one opened the circuit.

        Only a ``decisive`` failure (no connection, no answer) opens it."""
        if self.is_open:
            return False
        self.streak += 1
        self.reason = reason
        if decisive and self.streak >= self.threshold:
            self.is_open = True
            return True
        return False

    def success(self) -> None:
        """The relay answered: the streak is over."""
        if not self.is_open:
            self.streak = 0


class Throttle:
    """How many connections may be open, and until when every connection pauses."""

    def __init__(self, connections: int, *, policy: RetryPolicy, recovery: float) -> None:
        if connections < 1 or recovery < 0:
            raise ValueError("connections must be >= 1 and recovery >= 0")
        self.connections = connections
        self.allowed = connections
        self.active = connections  # workers not parked; kept by the pool
        self.resume_at = float("-inf")
        self.strikes = 0  # consecutive 421s, for the pause's backoff
        self._policy = policy
        self._recovery = recovery
        self._changed_at = float("-inf")

    def strike(self, now: float, *, pause: bool) -> float:
        """A 421 or "slow down": one connection fewer; ``pause`` everyone (in-session).

        Returns the seconds every connection now waits (0 without a pause).
        """
        self.strikes += 1
        self.allowed = max(1, self.allowed - 1)
        self._changed_at = now
        if not pause:
            return 0.0
        wait = self._policy.delay(self.strikes)
        self.resume_at = max(self.resume_at, now + wait)
        return wait

    def success(self, now: float) -> bool:
        """A message went through; True when one more connection is allowed again."""
        self.strikes = 0
        if self.allowed < self.connections and now - self._changed_at >= self._recovery:
            self.allowed += 1
            self._changed_at = now
            return True
        return False

    def should_park(self) -> bool:
        """More connections are working than allowed: one of them should stop."""
        return self.active > self.allowed

    def may_unpark(self) -> bool:
        return self.active < self.allowed

    def pause_left(self, now: float) -> float:
        return max(0.0, self.resume_at - now)
