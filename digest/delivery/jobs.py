"""The pool's work queue and outcome stream: every submitted message is answered once.

:class:`JobQueue` is the only place that counts messages in and outcomes out. Producers
``submit`` (blocking while the queue is full: back-pressure on rendering); workers ``take``
jobs, and either ``resolve`` them with an :class:`~digest.delivery.base.Outcome` or
``hand_back`` one they did not attempt; the reader iterates ``outcomes()``, which ends once
``finish()`` was called and every message is answered. ``stop()`` defers what is queued and
makes every later submission ``deferred`` at once.

One lock guards it all; the pool's own shared state (its throttle) is changed under the same
lock through the ``park``/``unpark`` callbacks, so a worker decides to park and to take a
job atomically.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from digest.delivery.base import Outcome, Outgoing

__all__ = ["PARK", "Job", "JobQueue"]

PARK: Final = "park"


@dataclass(slots=True)
class Job:
    message: Outgoing
    attempts: int = 0  # failed attempts so far
    tries: int = 0  # transactions started, for the stats
    idle_retry: bool = False  # the free reconnect after an idle close was used


class JobQueue:
    """Bounded job queue + outcome stream, shared by a pool's threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self._work = threading.Condition(self.lock)  # jobs, parking, the end
        self._space = threading.Condition(self.lock)  # room in the queue
        self._answered = threading.Condition(self.lock)  # every submitted message answered
        self._pending: deque[Job] = deque()
        self._holding = 0  # jobs in workers' hands
        self._submitted = self._resolved = 0
        self._finished = self._ended = self._drained = False
        self.stopped = threading.Event()
        self.stop_reason = "the run is stopping"
        self.attempts = 0  # transactions started, over every resolved job
        self._results: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()

    # Producer side ----------------------------------------------------------------------

    def submit(self, message: Outgoing) -> None:
        with self.lock:
            if self._finished:
                raise RuntimeError("submit() after finish()")
            self._submitted += 1
            while len(self._pending) >= self.size and not self.stopped.is_set():
                self._space.wait()
            if self.stopped.is_set():
                self._answer(Outcome(message.key, "deferred", error=self.stop_reason))
                return
            self._pending.append(Job(message))
            self._work.notify()

    def finish(self) -> None:
        with self.lock:
            self._finished = True
            self._maybe_end()
            self._work.notify_all()

    def stop(self, reason: str) -> bool:
        """Defer everything queued and all later submissions; False if already stopped."""
        with self.lock:
            if self.stopped.is_set():
                return False
            self.stop_reason = reason
            self.stopped.set()
            while self._pending:
                self._answer(Outcome(self._pending.popleft().message.key, "deferred", error=reason))
            self._work.notify_all()
            self._space.notify_all()
            return True

    # Reader side ------------------------------------------------------------------------

    def outcomes(self) -> Iterator[Outcome]:
        while not self._drained:
            outcome = self._results.get()
            if outcome is None:
                self._drained = True
                return
            yield outcome

    def collect(self, *, wait: bool = False) -> list[Outcome]:
        """The outcomes queued now; ``wait``: once every submitted message is answered."""
        if wait:
            with self.lock:
                while self._resolved < self._submitted:
                    self._answered.wait()
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

    def send_all(self, messages: Iterable[Outgoing]) -> Generator[Outcome, None, None]:
        """Submit from a feeder thread; yield outcomes; re-raise the iterable's error."""
        errors: list[BaseException] = []
        abandoned = threading.Event()

        def feed() -> None:
            try:
                for message in messages:
                    if abandoned.is_set():
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
                abandoned.set()
                self.stop("the run stopped reading outcomes")
            feeder.join()
        if errors:
            raise errors[0]

    # Worker side ------------------------------------------------------------------------

    def take(self, park: Callable[[], bool]) -> Job | Literal["park"] | None:
        """The next job; PARK when ``park()`` (called under the lock) says so; None at the end."""
        with self.lock:
            while True:
                if park():
                    return PARK
                if self._pending:
                    self._holding += 1
                    job = self._pending.popleft()
                    if len(self._pending) == self.size // 2:
                        # The producer refills from half empty: one wake-up per size/2 jobs.
                        self._space.notify_all()
                    return job
                if self.stopped.is_set() or (self._finished and self._holding == 0):
                    return None
                self._work.wait()

    def wait_unpark(self, unpark: Callable[[], bool]) -> bool:
        """Wait until ``unpark()`` (under the lock) agrees: True; or the work is over: False."""
        with self.lock:
            while not unpark():
                if self.stopped.is_set() or self._idle():
                    return False
                self._work.wait()
            return True

    def wake_all(self) -> None:
        """Something parked workers wait for changed (call with the lock held)."""
        self._work.notify_all()

    def hand_back(self, job: Job) -> None:
        """Return an unattempted job to the front of the queue for any worker."""
        with self.lock:
            self._holding -= 1
            if self.stopped.is_set():
                self._close(job, Outcome(job.message.key, "deferred", error=self.stop_reason))
                return
            self._pending.appendleft(job)
            self._work.notify()

    def resolve(self, job: Job, outcome: Outcome) -> None:
        with self.lock:
            self.resolve_locked(job, outcome)

    def resolve_locked(self, job: Job, outcome: Outcome) -> None:
        self._holding -= 1
        self._close(job, outcome)

    def defer(self, job: Job, reason: str | None = None) -> None:
        with self.lock:
            self.resolve_locked(
                job, Outcome(job.message.key, "deferred", error=reason or self.stop_reason)
            )

    # Internals (lock held) --------------------------------------------------------------

    def _close(self, job: Job, outcome: Outcome) -> None:
        self.attempts += job.tries
        self._answer(outcome)
        if self._idle():
            self._work.notify_all()  # idle and parked workers can leave

    def _idle(self) -> bool:
        return self._finished and self._holding == 0 and not self._pending

    def _answer(self, outcome: Outcome) -> None:
        self._resolved += 1
        self._results.put(outcome)
        if self._resolved == self._submitted:
            self._answered.notify_all()
        self._maybe_end()

    def _maybe_end(self) -> None:
        if self._finished and not self._ended and self._resolved == self._submitted:
            self._ended = True
            self._results.put(None)
