"""The SMTP pool: N reused connections in N threads, sending prebuilt messages.

A :class:`~digest.delivery.base.Sender`: ``submit`` an :class:`~digest.delivery.base.Outgoing`
(blocks while the queue is full), ``collect`` the outcomes known so far (``wait=True``:
until every submitted message is answered). Or, streaming::

    with SmtpPool.from_settings(settings) as pool:
        for outcome in pool.send_all(messages):   # any iterable, consumed in a thread
            record(outcome)

Every message submitted gets exactly one :class:`~digest.delivery.base.Outcome`:

``sent``
    The server accepted it: 250 after the end of DATA. It is never sent again by a retry.
``transient``
    Attempted and not accepted (4xx, dropped connection, no answer in time) after the
    retries: try again later, counting this attempt.
``permanent``
    Refused for good: 5xx at RCPT TO or DATA (``bounce``: about the address), 552 or 555 at
    MAIL FROM, larger than the relay's EHLO ``SIZE`` or a non-ASCII address the relay cannot
    take (then not even offered); the error names the stage.
``deferred``
    No final answer, not the message's fault: the relay is down (circuit open), the
    configuration is wrong, the hourly quota is used up, or the run is stopping. Send it in
    the next run without counting an attempt.

Each connection sets up once (EHLO, STARTTLS, AUTH; :mod:`.session`) when it first has work
and then runs one transaction per message, each under a wall-clock deadline
(:mod:`.deadline`). Shared by all connections (:mod:`.connection`): a bounded queue
(:mod:`.jobs`), the sliding-window rate limits (:mod:`.ratelimit`), and the policies of
:mod:`.control`: retries of 4xx and dropped connections on the same connection (never
after a 250), fewer connections and a pause after a 421, and a circuit breaker that stops
the pool when the relay cannot be reached, deferring everything left. Each outcome is
queued the moment the server answers (:mod:`.replies` says what a reply means).

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
from collections.abc import Generator, Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Self

from digest.delivery.base import Outcome, Outgoing
from digest.delivery.connection import Connection, PoolStats, Shared
from digest.delivery.control import CircuitBreaker, RetryPolicy, Throttle
from digest.delivery.deadline import Watchdog
from digest.delivery.jobs import JobQueue
from digest.delivery.ratelimit import RateLimiter
from digest.delivery.session import Endpoint, Security, SmtpSession
from digest.delivery.smtp import server_options
from digest.errors import DeliveryError

if TYPE_CHECKING:
    from digest.config.settings import Settings

__all__ = ["PoolStats", "SmtpPool"]

# Messages waiting per connection: enough to keep each one busy, few enough that stopping
# (a lost lease, an error) leaves little queued to defer.
QUEUE_PER_CONNECTION = 16


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
        policy = RetryPolicy(retries, retry_wait, max_retry_wait)
        self._jobs = JobQueue(queue_size or QUEUE_PER_CONNECTION * connections)
        self._shared = Shared(
            jobs=self._jobs,
            policy=policy,
            breaker=CircuitBreaker(breaker_threshold or max(3, connections)),
            throttle=Throttle(connections, policy=policy, recovery=throttle_recovery),
            limiter=RateLimiter(
                per_second=rate_per_second, per_hour=rate_per_hour, sent_before=sent_before
            ),
            max_rate_wait=max_rate_wait,
            stats=PoolStats(),
        )
        self._threads: list[threading.Thread] = []
        self._watchdog: Watchdog | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, sent_before: Iterable[float] = ()) -> SmtpPool:
        """The pool the ``smtp_*`` settings describe (not yet opened)."""
        return cls(
            **server_options(settings),
            connections=settings.smtp_connections,
            rate_per_second=settings.smtp_rate_per_second,
            rate_per_hour=settings.smtp_rate_per_hour,
            transaction_deadline=settings.smtp_transaction_timeout,
            sent_before=sent_before,
        )

    def __repr__(self) -> str:
        return f"SmtpPool({self._endpoint.where}, connections={self.connections})"

    @property
    def stats(self) -> PoolStats:
        """Counters so far (exact once the pool is closed)."""
        with self._jobs.lock:
            return dataclasses.replace(self._shared.stats, attempts=self._jobs.attempts)

    @property
    def failure(self) -> DeliveryError | None:
        """Why the pool stopped on its own: relay down (Transient…) or configuration."""
        with self._jobs.lock:
            return self._shared.failure

    # Lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Start the connection threads (each connects when it first has work). A pool is
        used once: open, send, close."""
        if self._threads:
            return
        if self._watchdog is not None:
            raise RuntimeError("this pool was closed; make a new one")
        endpoint = self._endpoint
        if endpoint.local_hostname is None:
            fqdn = socket.getfqdn()  # once per pool: it may ask DNS
            if "." in fqdn:
                self._endpoint = endpoint = dataclasses.replace(endpoint, local_hostname=fqdn)
        self._watchdog = Watchdog(tick=min(0.05, endpoint.deadline / 10))
        workers = [
            Connection(SmtpSession(endpoint, self._watchdog.guard()), self._shared)
            for _ in range(self.connections)
        ]
        self._watchdog.start()
        for index, worker in enumerate(workers):
            thread = threading.Thread(target=worker.run, name=f"smtp-{index}", daemon=True)
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
        if self._shared.crash is not None:
            raise self._shared.crash

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
        self._require_open()
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

    def collect(self, *, wait: bool = False) -> list[Outcome]:
        """The outcomes known now; with ``wait``, first wait until every message submitted
        so far is answered (bounded by the transaction deadline and the breaker)."""
        return self._jobs.collect(wait=wait)

    def send_all(self, messages: Iterable[Outgoing]) -> Generator[Outcome, None, None]:
        """Submit ``messages`` from a feeder thread while yielding outcomes as they come.

        Every message taken from the iterable gets one outcome (``deferred`` once the pool
        has stopped: check :attr:`failure` in the iterable to stop producing early). An
        exception from the iterable is raised here after the outcomes of what it gave.
        Closing this generator early stops the pool (the rest is deferred).
        """
        self._require_open()
        return self._jobs.send_all(messages)

    def _require_open(self) -> None:
        if not self._threads:
            raise RuntimeError("the pool is not open: use it as `with SmtpPool(...) as pool:`")
