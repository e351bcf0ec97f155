"""Deliver digests in batches: claim, render (other cores), hand over, record. Shared by
``digest run`` and queue workers; the ledger's invariants (digest/digests/ledger.py) hold.

Per batch of digest ids (``delivery_batch``, default 500):

1. **claim** the ready ones under this process's claimant (one UPDATE, committed);
2. **load** their payloads: from the run's memory when it has just recorded them, else from
   the store (a few queries per batch);
3. **render** them in the render pool — the next batches render while this one is sent;
   renderer processes write the outbox's files themselves (the sender's spool) and send
   back only their paths;
4. **hand over** each message to the sender (SMTP pool, outbox, a transport), checking the
   fence (the scheduler's lease) before each one;
5. **record** outcomes as they arrive, in small batches (at most ``FLUSH_EVERY`` messages or
   ``FLUSH_SECONDS`` old), only where the claim is still ours.

When sending stops (the lease is lost, the relay is down, the outbox cannot be written, an
exception) nothing claimed is left behind: digests never handed over are released (pending)
or deferred (failed, retryable at once, with the reason); only messages actually in flight
stay ``sending`` for the next run to re-send.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.engine import Engine

from digest.delivery.base import Outcome, Outgoing, Sender
from digest.delivery.renderpool import RenderedBatch, RenderFailure, RenderPool
from digest.delivery.senders import OutboxSender
from digest.digests import ledger
from digest.digests.ledger import Finish
from digest.errors import DeliveryError
from digest.ranking.memory import release_free_memory
from digest.render.batch import Batch, DigestPayload, PaperFields, load_batch
from digest.store import db

log = logging.getLogger(__name__)

# Outcomes are recorded together, at most this many and never older than this: a crash
# re-sends at most what went out in that window (the messages "in flight"). Smaller costs
# a commit per group (1-3 ms): 16 messages or 25 ms keeps that under a tenth of the run's
# thread at a relay's 600 messages/s, and a crash re-sends at most a few dozen messages.
FLUSH_EVERY = 16
FLUSH_SECONDS = 0.025
IN_FLIGHT = 2  # batches rendering ahead of the one being sent


class Observer(Protocol):
    """Told how long each step took (benchmarks, metrics)."""

    def step(self, name: str, seconds: float) -> None:
        """A step named ``name`` took ``seconds``."""


class Unobserved:
    """The default observer: nobody is watching."""

    def step(self, name: str, seconds: float) -> None:
        pass


@contextmanager
def timed(observer: Observer, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        observer.step(name, time.perf_counter() - started)


@dataclass(slots=True)
class Delivered:
    """One digest's outcome, for the run's report."""

    digest_id: int
    email: str
    period: str
    status: str  # sent failed
    items: int
    top_title: str | None = None
    top_reason: str | None = None
    top_matched: tuple[str, ...] = ()
    error: str | None = None


@dataclass(slots=True)
class DeliveryResult:
    delivered: list[Delivered] = field(default_factory=list)
    stopped: str | None = None  # why sending stopped early (relay down, outbox unwritable)

    @property
    def sent(self) -> int:
        return sum(1 for d in self.delivered if d.status == "sent")

    @property
    def failed(self) -> int:
        return sum(1 for d in self.delivered if d.status != "sent")


@dataclass(slots=True)
class _Pending:
    payload: DigestPayload
    subject: str | None = None
    message_id: str | None = None


class Delivery:
    """One process delivering batches of digests (see the module docstring)."""

    def __init__(
        self,
        engine: Engine,
        *,
        claimant: int,
        sender: Sender,
        render: RenderPool,
        now: datetime,
        bounce_limit: int,
        give_up_after: timedelta,
        envelope_from: str,
        batch_size: int = 500,
        memory: Mapping[int, DigestPayload] | None = None,
        fence: Callable[[], None] | None = None,
        observer: Observer | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.engine, self.claimant, self.sender, self.render = engine, claimant, sender, render
        self.now, self.bounce_limit, self.give_up_after = now, bounce_limit, give_up_after
        self.envelope_from, self.batch_size = envelope_from, batch_size
        self.memory = memory or {}
        self.fence = fence
        self.observer = observer or Unobserved()
        self.on_progress = on_progress
        self.result = DeliveryResult()
        self._claimed: dict[int, _Pending] = {}  # claimed, no outcome recorded yet
        self._submitted: set[int] = set()
        self._outcomes: list[Outcome] = []
        self._flushed_at = time.monotonic()
        self._papers: dict[int, PaperFields] = dict(render.papers)
        # Renderer processes write the outbox's files themselves, into its spool.
        self._spool = sender.spool if isinstance(sender, OutboxSender) else None
        self._done = 0
        self._total = 0

    # The loop ---------------------------------------------------------------------------

    def run(self, digest_ids: Sequence[int]) -> DeliveryResult:
        """Deliver what is still ready among ``digest_ids``; what happened to each."""
        self._total = len(digest_ids)
        queue: deque[tuple[list[int], Future[RenderedBatch]]] = deque()
        try:
            for start in range(0, len(digest_ids), self.batch_size):
                if self.result.stopped:
                    break
                ids = self._claim(digest_ids[start : start + self.batch_size])
                if ids:
                    batch = self._load(ids)
                    queue.append((ids, self.render.submit(batch, spool=self._spool)))
                while len(queue) > IN_FLIGHT:
                    self._send(*queue.popleft())
            while queue:
                self._send(*queue.popleft())
            self._flush(wait=True)
        except BaseException as exc:  # the lease lost, a crash of our own: stop, hand back
            self.sender.stop(f"the run stopped: {type(exc).__name__}")
            raise
        finally:
            for _, future in queue:
                if not future.cancel():  # rendering: let it end, its spool files with it
                    future.exception()
            self._hand_back()
        return self.result

    def _claim(self, ids: Sequence[int]) -> list[int]:
        with timed(self.observer, "claim"), db.transaction(self.engine) as session:
            claimed = ledger.claim_batch(
                session, ids, now=self.now, claimant=self.claimant, bounce_limit=self.bounce_limit
            )
        for digest_id, email, reason in claimed.refused:
            self.result.delivered.append(Delivered(digest_id, email, "", "failed", 0, error=reason))
        return claimed.ids

    def _load(self, ids: list[int]) -> Batch:
        batch = Batch([self.memory[i] for i in ids if i in self.memory])
        missing = [i for i in ids if i not in self.memory]
        if missing:
            with timed(self.observer, "load"), db.transaction(self.engine) as session:
                loaded = load_batch(session, missing, known_papers=self.render.known_papers)
            batch.payloads.extend(loaded.payloads)
            batch.papers = loaded.papers
            self._papers.update(loaded.papers)
        for payload in batch.payloads:
            self._claimed[payload.digest_id] = _Pending(payload)
        # a claimed digest gone meanwhile (its subscriber removed) has no payload: drop it
        return batch

    def _send(self, ids: list[int], future: Future[RenderedBatch]) -> None:
        with timed(self.observer, "render_wait"):
            batch = future.result()
        self.observer.step("render", batch.seconds)  # the renderer's own time, any process
        self.observer.step("render_cpu", batch.cpu)
        rendered = batch.items
        # the messages' bytes came here (not written to the spool by the renderers)
        carried = any(
            not isinstance(item, RenderFailure) and item.path is None for item in rendered
        )
        failures: list[Finish] = []
        for item in rendered:
            if isinstance(item, RenderFailure):
                failures.append(Finish(item.digest_id, "refused", error=item.error))
                self._report(item.digest_id, "failed", item.error)
                continue
            if self.result.stopped:
                break  # handed back below
            if self.fence is not None:
                self.fence()
            pending = self._claimed[item.digest_id]
            pending.subject, pending.message_id = item.subject, item.message_id
            with timed(self.observer, "send"):
                self.sender.submit(
                    Outgoing(
                        item.digest_id,
                        item.data,
                        self.envelope_from,
                        item.recipient,
                        item.message_id,
                        item.path,
                    )
                )
            self._submitted.add(item.digest_id)
            self._maybe_flush()
        if failures:
            self._record(failures)
        del ids, rendered, batch
        if carried:
            # The batch's 500 messages (66 KB each) are freed: give the C heap's free pages
            # back, or they pile up between the ones still in use (about 100 MB over a
            # 100,000 run). Spooled messages never were in this process: nothing to trim.
            release_free_memory()

    # Outcomes ---------------------------------------------------------------------------

    def _maybe_flush(self) -> None:
        self._outcomes.extend(self.sender.collect())
        old = time.monotonic() - self._flushed_at > FLUSH_SECONDS
        if len(self._outcomes) >= FLUSH_EVERY or (self._outcomes and old):
            self._flush()

    def _flush(self, *, wait: bool = False) -> None:
        self._outcomes.extend(self.sender.collect(wait=wait))
        outcomes, self._outcomes = self._outcomes, []
        self._flushed_at = time.monotonic()
        if not outcomes:
            return
        finishes = []
        for outcome in outcomes:
            pending = self._claimed[outcome.key]
            finishes.append(_finish_of(outcome, pending))
            if outcome.status == "deferred":  # never attempted: stop handing over
                self.result.stopped = self.result.stopped or outcome.error or "sending stopped"
            status = "sent" if outcome.status == "sent" else "failed"
            self._report(outcome.key, status, outcome.error)
        self._record(finishes)

    def _record(self, finishes: list[Finish]) -> None:
        with timed(self.observer, "finish"), db.transaction(self.engine) as session:
            ledger.finish_batch(
                session,
                finishes,
                now=self.now,
                claimant=self.claimant,
                give_up_after=self.give_up_after,
            )
        for finish in finishes:
            self._claimed.pop(finish.digest_id, None)
            self._submitted.discard(finish.digest_id)

    def _report(self, digest_id: int, status: str, error: str | None) -> None:
        payload = self._claimed[digest_id].payload
        top = payload.items[0] if payload.items else None
        paper = self._papers.get(top[0]) if top else None
        self.result.delivered.append(
            Delivered(
                digest_id,
                payload.email,
                payload.key.split(":", 1)[1],
                status,
                len(payload.items),
                paper.title if paper else None,
                top[2] if top else None,
                top[3] if top else (),
                None if status == "sent" else error,
            )
        )
        self._done += 1
        if self.on_progress is not None:
            self.on_progress(self._done, self._total)

    def _hand_back(self) -> None:
        """Claims never handed over go back: deferred (with the reason) when sending
        stopped on a failure, else released (pending, no attempt used)."""
        try:
            self._flush(wait=True)
        except DeliveryError as exc:
            log.warning("collecting outcomes failed: %s", exc)
        unsent = [d for d in self._claimed if d not in self._submitted]
        if not unsent:
            return
        stopped = self.result.stopped
        if stopped:
            for digest_id in unsent:
                self._report(digest_id, "failed", stopped)
        self._record(
            [
                Finish(d, "deferred", error=stopped) if stopped else Finish(d, "released")
                for d in unsent
            ]
        )


def _finish_of(outcome: Outcome, pending: _Pending) -> Finish:
    """The ledger's record of what the sender reported."""
    if outcome.status == "sent":
        return Finish(outcome.key, "sent", subject=pending.subject, message_id=pending.message_id)
    if outcome.status == "transient":
        return Finish(outcome.key, "retry", error=outcome.error)
    if outcome.status == "permanent":
        return Finish(outcome.key, "bounced" if outcome.bounce else "refused", error=outcome.error)
    return Finish(outcome.key, "deferred", error=outcome.error)  # never attempted
