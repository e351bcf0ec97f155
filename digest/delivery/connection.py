"""One connection's thread in the pool: take a job, send it, act on what the relay said.

A :class:`Connection` owns one :class:`~digest.delivery.session.SmtpSession` and shares a
:class:`Shared` with the other connections: the job queue, the retry policy, the circuit
breaker, the throttle, the rate limiter and the counters, all changed under the job
queue's lock. What each kind of :class:`~digest.delivery.session.SessionError` leads to:

- ``permanent``: the message's outcome (the relay answered, the breaker's streak ends);
- ``retry`` / ``lost``: the same connection tries again after the policy's backoff (at
  once the first time a connection merely dropped), up to ``retries`` times, then
  ``transient``; ``lost`` also counts for the breaker (decisively
  when there was no answer in time, not when the connection merely dropped);
- ``idle``: reconnect and try again once without counting an attempt;
- ``throttle``: one connection fewer (this one parks when refused at connect), a pause for
  all after a 421 within a session, the message back to the queue unattempted;
- ``down``: the message back to the queue, this connection backs off, the breaker counts;
- ``config``: the pool halts (everything left is deferred).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from digest.delivery.base import Outcome
from digest.delivery.control import CircuitBreaker, RetryPolicy, Throttle
from digest.delivery.jobs import PARK, Job, JobQueue
from digest.delivery.ratelimit import RateLimiter
from digest.delivery.replies import SessionError
from digest.delivery.session import SmtpSession
from digest.errors import DeliveryError, TransientDeliveryError

__all__ = ["Connection", "PoolStats", "Shared"]


@dataclass
class PoolStats:
    """Counters for tests and benchmarks (exact once the pool is closed)."""

    connections_opened: int = 0
    setup_failures: int = 0
    attempts: int = 0  # transactions started (MAIL FROM sent or about to be)
    retries: int = 0
    throttles: int = 0


@dataclass
class Shared:
    """What the connections of one pool share; changed under ``jobs.lock``."""

    jobs: JobQueue
    policy: RetryPolicy
    breaker: CircuitBreaker
    throttle: Throttle
    limiter: RateLimiter
    max_rate_wait: float
    stats: PoolStats
    failure: DeliveryError | None = None
    crash: BaseException | None = None

    def halt(self, failure: DeliveryError) -> None:
        """Stop the pool on its own: everything left is deferred, ``failure`` says why."""
        with self.jobs.lock:
            if self.failure is None:
                self.failure = failure
        self.jobs.stop(f"not attempted: {failure}")


class Connection:
    """One worker thread's loop over jobs (``run`` is the thread's target)."""

    def __init__(self, session: SmtpSession, shared: Shared) -> None:
        self.session = session
        self.shared = shared
        self._jobs = shared.jobs
        self._setup_failures = 0  # consecutive, for this connection's backoff
        self._park_now = False  # refused with 421 while over the allowed count

    def run(self) -> None:
        job: Job | None = None
        try:
            while True:
                taken = PARK if self._park_now else self._jobs.take(self._should_park)
                if taken is None:
                    break
                if taken == PARK:  # the throttle's count of active workers already says so
                    self._park_now = False
                    self.session.close()
                    if not self._jobs.wait_unpark(self._may_unpark):
                        break
                    continue
                job = taken
                self._run_job(job)
                job = None
        except BaseException as exc:
            self.shared.crash = exc  # a bug: close() raises it after deferring the rest
            self._jobs.stop(f"internal error: {type(exc).__name__}: {exc}")
            if job is not None:
                self._jobs.defer(job)
        finally:
            self.session.close()

    def _should_park(self) -> bool:
        """(Lock held.) More connections work than the relay allows: this one parks."""
        if self.shared.throttle.should_park():
            self.shared.throttle.active -= 1
            return True
        return False

    def _may_unpark(self) -> bool:
        """(Lock held.) Another connection is allowed again: this one comes back."""
        if self.shared.throttle.may_unpark():
            self.shared.throttle.active += 1
            return True
        return False

    def _run_job(self, job: Job) -> None:
        """Try ``job`` until it has an outcome or is handed back."""
        while self._ready(job):
            refused = self.session.refuse_locally(job.message)
            if refused is not None:
                return self._resolve(job, Outcome(job.message.key, "permanent", str(refused)))
            if not self._rate_slot(job):
                return None
            job.tries += 1
            try:
                code = self.session.send(job.message)
            except SessionError as failure:
                if self._failed(job, failure):
                    continue
                return None
            return self._resolve(job, Outcome(job.message.key, "sent", code=code))
        return None

    def _ready(self, job: Job) -> bool:
        """Not stopped, past any pause, connected; else the job is deferred or handed back."""
        if self._jobs.stopped.is_set() or self._sleep(self._throttle_pause()):
            self._jobs.defer(job)
            return False
        if not self.session.connected:
            try:
                self.session.open()
            except SessionError as failure:
                self._setup_failed(job, failure)
                return False
            self._setup_failures = 0
            with self._jobs.lock:
                self.shared.stats.connections_opened += 1
        return True

    def _rate_slot(self, job: Job) -> bool:
        """Wait for the job's send slot; False (job deferred) when it is too far or we stop."""
        wait = self.shared.limiter.reserve(max_wait=self.shared.max_rate_wait)
        if wait is None:
            self._jobs.defer(job, "rate limit: this window's quota is used")
            return False
        if self._sleep(wait):
            self._jobs.defer(job)
            return False
        return True

    def _failed(self, job: Job, failure: SessionError) -> bool:  # noqa: PLR0911 - one exit per kind
        """Act on a failed transaction; True to try the same job again on this worker."""
        key, kind = job.message.key, failure.kind
        if kind == "permanent":
            # A 5xx at RCPT TO or DATA is about the address (a hard bounce); a 552 at
            # MAIL FROM is about the message.
            bounce = failure.stage in ("RCPT TO", "DATA")
            outcome = Outcome(key, "permanent", str(failure), failure.code, bounce)
            self._resolve(job, outcome)
            return False
        if kind == "config":
            self.shared.halt(DeliveryError(str(failure)))
            self._jobs.defer(job)
            return False
        if kind == "idle" and not job.idle_retry:
            job.idle_retry = True  # the relay closed an idle connection: reconnect, free
            return True
        if kind == "throttle":
            with self._jobs.lock:
                self.shared.stats.throttles += 1
                self.shared.throttle.strike(time.monotonic(), pause=True)
            self._jobs.hand_back(job)
            self._relay_failure(str(failure))
            return False
        if kind == "retry":
            with self._jobs.lock:
                self.shared.breaker.success()  # the relay answered
        elif self._relay_failure(str(failure), decisive=failure.silent):
            self._jobs.defer(job)
            return False
        job.attempts += 1
        if not self.shared.policy.allows(job.attempts):
            tries = f"{job.attempts} attempt{'s' if job.attempts > 1 else ''}"
            error = f"{failure} (gave up after {tries})"
            self._resolve(job, Outcome(key, "transient", error, failure.code))
            return False
        with self._jobs.lock:
            self.shared.stats.retries += 1
        # A connection that merely dropped is retried at once on a new one, the first time.
        dropped = kind != "retry" and not failure.silent and job.attempts == 1
        if self._sleep(0.0 if dropped else self.shared.policy.delay(job.attempts)):
            self._jobs.defer(job)
            return False
        return True

    def _setup_failed(self, job: Job, failure: SessionError) -> None:
        """A connection could not be set up: hand the job back, back off, maybe halt."""
        if failure.kind == "config":
            self.shared.halt(DeliveryError(str(failure)))
            return self._jobs.defer(job)
        self._jobs.hand_back(job)
        self._setup_failures += 1
        with self._jobs.lock:
            self.shared.stats.setup_failures += 1
            if failure.kind == "throttle":
                self.shared.stats.throttles += 1
                self.shared.throttle.strike(time.monotonic(), pause=False)
                # The refused connection is the one to give up its place.
                self._park_now = self._should_park()
        if not self._relay_failure(str(failure)) and not self._park_now:
            self._sleep(self.shared.policy.delay(self._setup_failures))
        return None

    def _relay_failure(self, reason: str, *, decisive: bool = True) -> bool:
        """Count a failure to reach the relay; True once the breaker is open (pool halted)."""
        with self._jobs.lock:
            opened = self.shared.breaker.failure(reason, decisive=decisive)
            streak, last = self.shared.breaker.streak, self.shared.breaker.reason
        if opened:
            self.shared.halt(
                TransientDeliveryError(
                    f"relay unreachable, sending stopped after {streak} consecutive failures; "
                    f"the rest waits for the next run (last: {last})"
                )
            )
        return self.shared.breaker.is_open

    def _resolve(self, job: Job, outcome: Outcome) -> None:
        """Record an answer from the relay (sent or refused for good)."""
        with self._jobs.lock:
            self.shared.breaker.success()
            if outcome.status == "sent" and self.shared.throttle.success(time.monotonic()):
                self._jobs.wake_all()  # a parked connection may come back
            self._jobs.resolve_locked(job, outcome)

    def _throttle_pause(self) -> float:
        with self._jobs.lock:
            return self.shared.throttle.pause_left(time.monotonic())

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the pool stops first; True when it stopped."""
        if seconds <= 0:
            return self._jobs.stopped.is_set()
        return self._jobs.stopped.wait(seconds)
