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
import queue
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, Self

from digest.delivery.control import CircuitBreaker, RetryPolicy, Throttle
from digest.delivery.deadline import Watchdog
from digest.delivery.outgoing import Outcome, Outgoing
from digest.delivery.ratelimit import RateLimiter
from digest.delivery.session import Endpoint, Security, SessionError, SmtpSession
from digest.errors import ConfigError, DeliveryError, TransientDeliveryError

if TYPE_CHECKING:
    from digest.config.settings import Settings

__all__ = ["PoolStats", "SmtpPool"]


@dataclass(slots=True)
class _Job:
    message: Outgoing
    attempts: int = 0  # failed attempts so far
    tries: int = 0  # transactions started, for the stats
    idle_retry: bool = False  # the free reconnect after an idle close was used


@dataclass
class PoolStats:
    """Counters for tests and benchmarks (read after :meth:`SmtpPool.close`)."""

    connections_opened: int = 0
    setup_failures: int = 0
    attempts: int = 0  # transactions started (MAIL FROM sent or about to be)
    retries: int = 0
    throttles: int = 0


_PARK: Final = "park"


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
        self._queue_size = queue_size or 64 * connections
        self.stats = PoolStats()

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # jobs, budget, the end
        self._space = threading.Condition(self._lock)  # room in the queue
        self._pending: deque[_Job] = deque()
        self._holding = 0  # jobs in workers' hands
        self._submitted = self._resolved = 0
        self._finished = self._ended = self._drained = self._abandoned = False
        self._stop = threading.Event()
        self._stop_reason = "the run is stopping"
        self._failure: DeliveryError | None = None
        self._crash: BaseException | None = None
        self._results: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()
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
    def failure(self) -> DeliveryError | None:
        """Why the pool stopped on its own: relay down (Transient…) or configuration."""
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
        sessions = [SmtpSession(endpoint, self._watchdog.guard()) for _ in range(self.connections)]
        self._watchdog.start()
        for index, session in enumerate(sessions):
            thread = threading.Thread(
                target=self._run_worker, args=(session,), name=f"smtp-{index}", daemon=True
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
        with self._lock:
            if self._finished:
                raise RuntimeError("submit() after finish()")
            self._submitted += 1
            while len(self._pending) >= self._queue_size and not self._stop.is_set():
                self._space.wait()
            if self._stop.is_set():
                self._answer(Outcome(message.key, "deferred", error=self._stop_reason))
                return
            self._pending.append(_Job(message))
            self._work.notify()

    def finish(self) -> None:
        """No more submissions: :meth:`outcomes` ends when every message is answered."""
        with self._lock:
            self._finished = True
            self._maybe_end()
            self._work.notify_all()

    def stop(self, reason: str = "the run is stopping") -> None:
        """Start nothing new: queued messages are deferred now, transactions under way end."""
        with self._lock:
            if self._stop.is_set():
                return
            self._stop_reason = reason
            self._stop.set()
            while self._pending:
                job = self._pending.popleft()
                self._answer(Outcome(job.message.key, "deferred", error=reason))
            self._work.notify_all()
            self._space.notify_all()

    def outcomes(self) -> Iterator[Outcome]:
        """Each message's outcome as the server answers; ends after :meth:`finish` once all
        are answered. One reader at a time."""
        while not self._drained:
            outcome = self._results.get()
            if outcome is None:
                self._drained = True
                return
            yield outcome

    def poll(self) -> list[Outcome]:
        """The outcomes available now, without waiting (for a single-threaded caller)."""
        ready: list[Outcome] = []
        while not self._drained:
            try:
                outcome = self._results.get_nowait()
            except queue.Empty:
                break
            if outcome is None:
                self._drained = True
            else:
                ready.append(outcome)
        return ready

    def send_all(self, messages: Iterable[Outgoing]) -> Iterator[Outcome]:
        """Submit ``messages`` from a feeder thread while yielding outcomes as they come.

        Every message taken from the iterable gets one outcome (``deferred`` once the pool
        has stopped: check :attr:`failure` in the iterable to stop producing early). An
        exception from the iterable is raised here after the outcomes of what it gave.
        Closing this generator early stops the pool (the rest is deferred).
        """
        errors: list[BaseException] = []

        def feed() -> None:
            try:
                for message in messages:
                    if self._abandoned:
                        break
                    self.submit(message)
            except BaseException as exc:  # handed to the reading thread, raised there
                errors.append(exc)
            finally:
                self.finish()

        feeder = threading.Thread(target=feed, name="smtp-feeder", daemon=True)
        feeder.start()
        try:
            yield from self.outcomes()
        finally:
            if feeder.is_alive():  # the reader left early
                self._abandoned = True
                self.stop("the run stopped reading outcomes")
            feeder.join()
        if errors:
            raise errors[0]

    # Workers ----------------------------------------------------------------------------

    def _run_worker(self, session: SmtpSession) -> None:
        setup_failures = 0
        job: _Job | None = None
        try:
            while (taken := self._take()) is not None:
                if taken == _PARK:
                    session.close()
                    if not self._park():
                        break
                    continue
                assert isinstance(taken, _Job)
                job = taken
                setup_failures = self._run_job(session, job, setup_failures)
                job = None
        except BaseException as exc:
            self._crash = exc  # a bug: close() raises it after deferring the rest
            self.stop(f"internal error: {type(exc).__name__}: {exc}")
            if job is not None:
                self._resolve(job, Outcome(job.message.key, "deferred", error=self._stop_reason))
        finally:
            session.close()

    def _take(self) -> _Job | Literal["park"] | None:
        with self._lock:
            while True:
                if self._throttle.should_park():
                    self._throttle.active -= 1
                    return _PARK
                if self._pending:
                    self._holding += 1
                    self._space.notify()
                    return self._pending.popleft()
                if self._stop.is_set() or (self._finished and self._holding == 0):
                    return None
                self._work.wait()

    def _park(self) -> bool:
        """Wait until another connection is allowed (True) or there is no more work."""
        with self._lock:
            while not self._throttle.may_unpark():
                if self._stop.is_set() or (
                    self._finished and self._holding == 0 and not self._pending
                ):
                    return False
                self._work.wait()
            self._throttle.active += 1
            return True

    def _run_job(self, session: SmtpSession, job: _Job, setup_failures: int) -> int:
        """Try ``job`` until it has an outcome or is handed back; return set-up failures."""
        while True:
            if self._stop.is_set() or self._sleep(self._throttle_pause()):
                return self._defer(job, setup_failures)
            if not session.connected:
                try:
                    session.open()
                except SessionError as failure:
                    return self._setup_failed(job, failure, setup_failures + 1)
                setup_failures = 0
                with self._lock:
                    self.stats.connections_opened += 1
            wait = self._limiter.reserve(max_wait=self._max_rate_wait)
            if wait is None:
                return self._defer(job, setup_failures, "rate limit: this window's quota is used")
            if self._sleep(wait):
                return self._defer(job, setup_failures)
            job.tries += 1
            try:
                code = session.send(job.message)
            except SessionError as failure:
                if not self._failed(job, failure):
                    return setup_failures
                continue
            self._resolve(job, Outcome(job.message.key, "sent", code=code), relay_ok=True)
            return setup_failures

    def _failed(self, job: _Job, failure: SessionError) -> bool:  # noqa: PLR0911 - one exit per kind
        """Act on a failed transaction; True to try the same job again on this worker."""
        key, kind = job.message.key, failure.kind
        if kind == "permanent":
            outcome = Outcome(key, "permanent", failure.code, str(failure), failure.stage)
            self._resolve(job, outcome, relay_ok=True)
            return False
        if kind == "config":
            self._halt(DeliveryError(str(failure)))
            self._defer(job, 0)
            return False
        if kind == "idle" and not job.idle_retry:
            job.idle_retry = True  # the relay closed an idle connection: reconnect, free
            return True
        if kind == "throttle":
            with self._lock:
                self.stats.throttles += 1
                self._throttle.strike(time.monotonic(), pause=True)
                opened = self._breaker.failure(str(failure))
            self._hand_back(job)
            if opened:
                self._breaker_opened()
            return False
        if kind == "retry":
            with self._lock:
                self._breaker.success()  # the relay answered
        elif self._relay_failure(str(failure)):
            self._defer(job, 0)
            return False
        job.attempts += 1
        if not self._policy.allows(job.attempts):
            tries = f"{job.attempts} attempt{'s' if job.attempts > 1 else ''}"
            error = f"{failure} (gave up after {tries})"
            self._resolve(job, Outcome(key, "transient", failure.code, error, failure.stage))
            return False
        with self._lock:
            self.stats.retries += 1
        if self._sleep(self._policy.delay(job.attempts)):
            self._defer(job, 0)
            return False
        return True

    def _setup_failed(self, job: _Job, failure: SessionError, setup_failures: int) -> int:
        """A connection could not be set up: hand the job back, back off, maybe halt."""
        if failure.kind == "config":
            self._halt(DeliveryError(str(failure)))
            self._defer(job, 0)
            return setup_failures
        self._hand_back(job)
        with self._lock:
            self.stats.setup_failures += 1
            if failure.kind == "throttle":
                self.stats.throttles += 1
                self._throttle.strike(time.monotonic(), pause=False)
        if not self._relay_failure(str(failure)):
            self._sleep(self._policy.delay(setup_failures))
        return setup_failures

    def _relay_failure(self, reason: str) -> bool:
        """Count a failure to reach the relay; True when the breaker opened (pool halted)."""
        with self._lock:
            opened = self._breaker.failure(reason)
        if opened:
            self._breaker_opened()
        return opened or self._breaker.is_open

    def _breaker_opened(self) -> None:
        streak = self._breaker.streak
        self._halt(
            TransientDeliveryError(
                f"relay unreachable, sending stopped after {streak} consecutive failures; "
                f"the rest waits for the next run (last: {self._breaker.reason})"
            )
        )

    def _halt(self, failure: DeliveryError) -> None:
        with self._lock:
            if self._failure is None:
                self._failure = failure
        self.stop(f"not attempted: {failure}")

    # Bookkeeping ------------------------------------------------------------------------

    def _hand_back(self, job: _Job) -> None:
        """Return an unattempted job to the front of the queue for any connection."""
        with self._lock:
            self._holding -= 1
            if self._stop.is_set():
                self.stats.attempts += job.tries
                self._resolved_locked(Outcome(job.message.key, "deferred", error=self._stop_reason))
                return
            self._pending.appendleft(job)
            self._work.notify()

    def _defer(self, job: _Job, setup_failures: int, reason: str | None = None) -> int:
        self._resolve(job, Outcome(job.message.key, "deferred", error=reason or self._stop_reason))
        return setup_failures

    def _resolve(self, job: _Job, outcome: Outcome, *, relay_ok: bool = False) -> None:
        with self._lock:
            self._holding -= 1
            self.stats.attempts += job.tries
            if relay_ok:
                self._breaker.success()
            if outcome.status == "sent" and self._throttle.success(time.monotonic()):
                self._work.notify_all()  # a parked connection may come back
            self._resolved_locked(outcome)

    def _resolved_locked(self, outcome: Outcome) -> None:
        self._answer(outcome)
        if self._finished and self._holding == 0 and not self._pending:
            self._work.notify_all()  # idle and parked workers can leave

    def _answer(self, outcome: Outcome) -> None:
        """Queue an outcome (lock held) and end the stream when it was the last one."""
        self._resolved += 1
        self._results.put(outcome)
        self._maybe_end()

    def _maybe_end(self) -> None:
        if self._finished and not self._ended and self._resolved == self._submitted:
            self._ended = True
            self._results.put(None)

    def _throttle_pause(self) -> float:
        with self._lock:
            return self._throttle.pause_left(time.monotonic())

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the pool stops first; True when it stopped."""
        if seconds <= 0:
            return self._stop.is_set()
        return self._stop.wait(seconds)
