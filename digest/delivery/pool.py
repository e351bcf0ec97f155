"""The SMTP pool: N reused connections in N threads, sending prebuilt messages.

::

    with SmtpPool.from_settings(settings) as pool:
        for outcome in pool.send_all(messages):   # Outgoing in, one Outcome each, streamed
            record(outcome)

Each connection sets up once (EHLO, STARTTLS, AUTH; :mod:`.session`) when it first has work
and then runs one transaction per message, each under a wall-clock deadline
(:mod:`.deadline`). Shared by all connections: a bounded queue (``submit`` blocks when it is
full), the sliding-window rate limits (:mod:`.ratelimit`), and the policies of
:mod:`.control`: retries of 4xx and dropped connections on the same connection (never
after a 250), fewer connections and a pause after a 421, and a circuit breaker that stops
the pool when the relay cannot be reached, deferring everything left. Outcomes
(:mod:`.outgoing`) are queued the moment the server answers.

A configuration problem (authentication refused, the sender refused, no STARTTLS, an
untrusted certificate) also stops the pool and defers the rest; :attr:`SmtpPool.failure`
then holds a plain :class:`~digest.errors.DeliveryError`, while a relay that is down leaves
a :class:`~digest.errors.TransientDeliveryError` there.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

from digest.delivery.control import CircuitBreaker, RetryPolicy, Throttle
from digest.delivery.deadline import Watchdog
from digest.delivery.jobs import PARK, Job, JobQueue
from digest.delivery.outgoing import Outcome, Outgoing
from digest.delivery.ratelimit import RateLimiter
from digest.delivery.session import Endpoint, Security, SessionError, SmtpSession
from digest.errors import ConfigError, DeliveryError, TransientDeliveryError

if TYPE_CHECKING:
    from digest.config.settings import Settings

__all__ = ["PoolStats", "SmtpPool"]


@dataclass
class PoolStats:
    """Counters for tests and benchmarks (read after :meth:`SmtpPool.close`)."""

    connections_opened: int = 0
    setup_failures: int = 0
    attempts: int = 0  # transactions started (MAIL FROM sent or about to be)
    retries: int = 0
    throttles: int = 0


@dataclass(slots=True)
class _Worker:
    """One connection's thread state."""

    session: SmtpSession
    setup_failures: int = 0  # consecutive, for this connection's backoff
    park_now: bool = False  # refused with 421 while over the allowed count


class SmtpPool:
    """Sends :class:`Outgoing` messages over ``connections`` reused SMTP connections.

    ``retries``/``retry_wait``: extra attempts after a 4xx or a dropped connection, waiting
    ``retry_wait·2^(n-1)`` seconds (capped at ``max_retry_wait``) plus jitter.
    ``transaction_deadline``: seconds one transaction (or the set-up) may take in all.
    ``breaker_threshold``: consecutive failures to reach the relay that stop the pool
    (default ``max(3, connections)``). ``max_rate_wait``: a message whose rate-limit slot
    is further away is deferred (an hourly quota used up). ``sent_before``: ages in seconds
    of earlier sends, counted by the rate windows. See the module doc for the rest.
    """

    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        connections: int = 4,
        rate_per_second: int | None = None,
        rate_per_hour: int | None = None,
        transaction_deadline: float = 60.0,
        retries: int = 3,
        retry_wait: float = 1.0,
        max_retry_wait: float = 60.0,
        breaker_threshold: int | None = None,
        throttle_recovery: float = 30.0,
        max_rate_wait: float = 60.0,
        queue_size: int | None = None,
        sent_before: Iterable[float] = (),
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(f"unknown SMTP security {security!r}")
        if connections < 1 or timeout <= 0 or transaction_deadline <= 0:
            raise ValueError("connections must be >= 1, timeout and deadline > 0")
        self._endpoint = Endpoint(
            host, port, security, username, password, timeout, transaction_deadline,
            local_hostname, ssl_context,
        )  # fmt: skip
        self.connections = connections
        self._policy = RetryPolicy(retries, retry_wait, max_retry_wait)
        self._breaker = CircuitBreaker(breaker_threshold or max(3, connections))
        self._throttle = Throttle(connections, policy=self._policy, recovery=throttle_recovery)
        self._limiter = RateLimiter(
            per_second=rate_per_second, per_hour=rate_per_hour, sent_before=sent_before
        )
        self._max_rate_wait = max_rate_wait
        self._jobs = JobQueue(queue_size or 64 * connections)
        self._stats = PoolStats()
        self._failure: DeliveryError | None = None
        self._crash: BaseException | None = None
        self._threads: list[threading.Thread] = []
        self._watchdog: Watchdog | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, sent_before: Iterable[float] = ()) -> SmtpPool:
        """The pool the ``smtp_*`` settings describe (not yet opened)."""
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        if settings.smtp_username and password is None:
            raise ConfigError("smtp_username is set but smtp_password is not")
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout,
            connections=settings.smtp_connections,
            rate_per_second=settings.smtp_rate_per_second,
            rate_per_hour=settings.smtp_rate_per_hour,
            transaction_deadline=settings.smtp_transaction_timeout,
            retries=settings.smtp_retries,
            retry_wait=settings.smtp_retry_wait,
            sent_before=sent_before,
        )

    def __repr__(self) -> str:
        return f"SmtpPool({self._endpoint.where}, connections={self.connections})"

    @property
    def stats(self) -> PoolStats:
        """Counters so far (exact once the pool is closed)."""
        with self._jobs.lock:
            return dataclasses.replace(self._stats, attempts=self._jobs.attempts)

    @property
    def failure(self) -> DeliveryError | None:
        """Why the pool stopped on its own: relay down (Transient…) or configuration."""
        with self._jobs.lock:
            return self._failure

    # Lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Start the connection threads (each connects when it first has work)."""
        if self._threads:
            return
        endpoint = self._endpoint
        if endpoint.local_hostname is None:
            fqdn = socket.getfqdn()  # once per pool: it may ask DNS
            if "." in fqdn:
                self._endpoint = endpoint = dataclasses.replace(endpoint, local_hostname=fqdn)
        self._watchdog = Watchdog(tick=min(0.05, endpoint.deadline / 10))
        workers = [
            _Worker(SmtpSession(endpoint, self._watchdog.guard())) for _ in range(self.connections)
        ]
        self._watchdog.start()
        for index, worker in enumerate(workers):
            thread = threading.Thread(
                target=self._run_worker, args=(worker,), name=f"smtp-{index}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def close(self) -> None:
        """Finish what was submitted (or defer it once stopped), QUIT, join the threads."""
        if not self._threads:
            return
        self.finish()
        for thread in self._threads:
            thread.join()
        self._threads = []
        if self._watchdog is not None:
            self._watchdog.stop()
        if self._crash is not None:
            raise self._crash

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.stop(f"the run stopped: {type(exc).__name__}")
        self.close()

    # Feeding and reading ----------------------------------------------------------------

    def submit(self, message: Outgoing) -> None:
        """Queue ``message``; blocks while the queue is full. Once the pool has stopped,
        the message is answered ``deferred`` at once."""
        self._jobs.submit(message)

    def finish(self) -> None:
        """No more submissions: :meth:`outcomes` ends when every message is answered."""
        self._jobs.finish()

    def stop(self, reason: str = "the run is stopping") -> None:
        """Start nothing new: queued messages are deferred now, transactions under way end."""
        self._jobs.stop(reason)

    def outcomes(self) -> Iterator[Outcome]:
        """Each message's outcome as the server answers; ends after :meth:`finish` once all
        are answered. One reader at a time."""
        return self._jobs.outcomes()

    def poll(self) -> list[Outcome]:
        """The outcomes available now, without waiting (for a single-threaded caller)."""
        return self._jobs.poll()

    def send_all(self, messages: Iterable[Outgoing]) -> Iterator[Outcome]:
        """Submit ``messages`` from a feeder thread while yielding outcomes as they come.

        Every message taken from the iterable gets one outcome (``deferred`` once the pool
        has stopped: check :attr:`failure` in the iterable to stop producing early). An
        exception from the iterable is raised here after the outcomes of what it gave.
        Closing this generator early stops the pool (the rest is deferred).
        """
        return self._jobs.send_all(messages)

    # Workers ----------------------------------------------------------------------------

    def _run_worker(self, worker: _Worker) -> None:
        job: Job | None = None
        try:
            while True:
                taken = PARK if worker.park_now else self._jobs.take(self._should_park)
                if taken is None:
                    break
                if taken == PARK:  # the throttle's count of active workers already says so
                    worker.park_now = False
                    worker.session.close()
                    if not self._jobs.wait_unpark(self._may_unpark):
                        break
                    continue
                job = taken
                self._run_job(worker, job)
                job = None
        except BaseException as exc:
            self._crash = exc  # a bug: close() raises it after deferring the rest
            self.stop(f"internal error: {type(exc).__name__}: {exc}")
            if job is not None:
                self._jobs.defer(job)
        finally:
            worker.session.close()

    def _should_park(self) -> bool:
        """(Lock held.) More connections work than the relay allows: this one parks."""
        if self._throttle.should_park():
            self._throttle.active -= 1
            return True
        return False

    def _may_unpark(self) -> bool:
        """(Lock held.) Another connection is allowed again: this one comes back."""
        if self._throttle.may_unpark():
            self._throttle.active += 1
            return True
        return False

    def _run_job(self, worker: _Worker, job: Job) -> None:
        """Try ``job`` until it has an outcome or is handed back."""
        session = worker.session
        while True:
            if self._jobs.stopped.is_set() or self._sleep(self._throttle_pause()):
                return self._jobs.defer(job)
            if not session.connected:
                try:
                    session.open()
                except SessionError as failure:
                    return self._setup_failed(worker, job, failure)
                worker.setup_failures = 0
                with self._jobs.lock:
                    self._stats.connections_opened += 1
            wait = self._limiter.reserve(max_wait=self._max_rate_wait)
            if wait is None:
                return self._jobs.defer(job, "rate limit: this window's quota is used")
            if self._sleep(wait):
                return self._jobs.defer(job)
            job.tries += 1
            try:
                code = session.send(job.message)
            except SessionError as failure:
                if not self._failed(job, failure):
                    return None
                continue
            return self._resolve(job, Outcome(job.message.key, "sent", code=code))

    def _failed(self, job: Job, failure: SessionError) -> bool:  # noqa: PLR0911 - one exit per kind
        """Act on a failed transaction; True to try the same job again on this worker."""
        key, kind = job.message.key, failure.kind
        if kind == "permanent":
            self._resolve(job, Outcome(key, "permanent", failure.code, str(failure), failure.stage))
            return False
        if kind == "config":
            self._halt(DeliveryError(str(failure)))
            self._jobs.defer(job)
            return False
        if kind == "idle" and not job.idle_retry:
            job.idle_retry = True  # the relay closed an idle connection: reconnect, free
            return True
        if kind == "throttle":
            with self._jobs.lock:
                self._stats.throttles += 1
                self._throttle.strike(time.monotonic(), pause=True)
            self._jobs.hand_back(job)
            self._relay_failure(str(failure))
            return False
        if kind == "retry":
            with self._jobs.lock:
                self._breaker.success()  # the relay answered
        elif self._relay_failure(str(failure)):
            self._jobs.defer(job)
            return False
        job.attempts += 1
        if not self._policy.allows(job.attempts):
            tries = f"{job.attempts} attempt{'s' if job.attempts > 1 else ''}"
            error = f"{failure} (gave up after {tries})"
            self._resolve(job, Outcome(key, "transient", failure.code, error, failure.stage))
            return False
        with self._jobs.lock:
            self._stats.retries += 1
        if self._sleep(self._policy.delay(job.attempts)):
            self._jobs.defer(job)
            return False
        return True

    def _setup_failed(self, worker: _Worker, job: Job, failure: SessionError) -> None:
        """A connection could not be set up: hand the job back, back off, maybe halt."""
        if failure.kind == "config":
            self._halt(DeliveryError(str(failure)))
            return self._jobs.defer(job)
        self._jobs.hand_back(job)
        worker.setup_failures += 1
        with self._jobs.lock:
            self._stats.setup_failures += 1
            if failure.kind == "throttle":
                self._stats.throttles += 1
                self._throttle.strike(time.monotonic(), pause=False)
                # The refused connection is the one to give up its place.
                worker.park_now = self._should_park()
        if not self._relay_failure(str(failure)) and not worker.park_now:
            self._sleep(self._policy.delay(worker.setup_failures))
        return None

    def _relay_failure(self, reason: str) -> bool:
        """Count a failure to reach the relay; True once the breaker is open (pool halted)."""
        with self._jobs.lock:
            opened = self._breaker.failure(reason)
            streak, last = self._breaker.streak, self._breaker.reason
        if opened:
            self._halt(
                TransientDeliveryError(
                    f"relay unreachable, sending stopped after {streak} consecutive failures; "
                    f"the rest waits for the next run (last: {last})"
                )
            )
        return self._breaker.is_open

    def _halt(self, failure: DeliveryError) -> None:
        with self._jobs.lock:
            if self._failure is None:
                self._failure = failure
        self.stop(f"not attempted: {failure}")

    def _resolve(self, job: Job, outcome: Outcome) -> None:
        """Record an answer from the relay (sent or refused for good)."""
        with self._jobs.lock:
            self._breaker.success()
            if outcome.status == "sent" and self._throttle.success(time.monotonic()):
                self._jobs.wake_all()  # a parked connection may come back
            self._jobs.resolve_locked(job, outcome)

    def _throttle_pause(self) -> float:
        with self._jobs.lock:
            return self._throttle.pause_left(time.monotonic())

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the pool stops first; True when it stopped."""
        if seconds <= 0:
            return self._jobs.stopped.is_set()
        return self._jobs.stopped.wait(seconds)
