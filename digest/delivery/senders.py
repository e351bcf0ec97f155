"""Senders for the in-process run: the outbox in batches, and any one-at-a-time transport.

:class:`OutboxSender` writes Maildir-style, on a writer thread of its own (file creation
and the filesystem syncs wait on the disk; the run's thread goes on handing over): each
message to ``<outbox>/.tmp/`` first, then, once a batch is written (or the writer has been
idle for :data:`OUTBOX_IDLE_FLUSH` seconds), one filesystem sync (``syncfs``) makes the
whole batch durable, the files are renamed into ``<outbox>/`` (an atomic rename on the same
filesystem) and the directory is synced; only then are the messages reported ``sent``, so
the ledger never says ``sent`` for a file a crash could still lose. Readers never see a
half-written file. The queue in front of the writer is bounded (back-pressure).

A run's renderer processes write their messages' files themselves, into the sender's
*spool* (``<outbox>/.tmp/spool-<pid>-<random>@<host>/``, one per sender, removed when it
closes, or by a later sender on the same host once its process is gone), and hand over only the path
(:attr:`Outgoing.path`): 67 KB a message sent back down a pipe, read, unpickled and
written again by the run's process cost more CPU than the write itself. Such a file is
made durable and renamed like the ones the writer thread wrote.

:class:`TransportSender` adapts a one-message-at-a-time :class:`~digest.delivery.base.Transport`
(a test double, a custom transport): each message is sent when
submitted and its outcome is known at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import logging
import os
import queue
import secrets
import shutil
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from digest.delivery.base import Outcome, Outgoing, Transport
from digest.delivery.outbox import eml_name, write_file
from digest.digests.claims import process_alive
from digest.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)

OUTBOX_BATCH = 256  # messages made durable together
OUTBOX_IDLE_FLUSH = 0.2  # seconds without a new message before a partial batch is synced
_PUT_WAIT = 0.5  # seconds between checks that the writer is still alive, when the queue is full
SPOOL_PREFIX = "spool-"


def _syncfs_function() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _syncfs_function()


def sync_filesystem(directory: Path) -> None:
    """Make everything written to ``directory``'s filesystem durable: one ``syncfs`` call
    (Linux) instead of one ``fsync`` per file; ``os.sync`` elsewhere."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        if _SYNCFS is None or _SYNCFS(fd) != 0:
            os.sync()
        os.fsync(fd)  # the directory entries themselves
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Flush:
    """Asks the writer to make what it wrote durable now; ``done`` is set once it has."""

    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()  # the writer's last item


class OutboxSender:
    """Writes each message to ``<directory>/<Message-ID>.eml``, durable in batches."""

    name = "outbox"

    def __init__(self, directory: Path, *, batch: int = OUTBOX_BATCH) -> None:
        self.directory = directory
        self.tmp = directory / ".tmp"
        self.batch = batch
        self._queue: queue.Queue[Outgoing | _Flush | object] = queue.Queue(maxsize=2 * batch)
        self._outcomes: deque[Outcome] = deque()  # appended by the writer, taken by collect
        self._written: list[tuple[int, str, str]] = []  # the writer's: key, temporary, final
        self._directory, self._tmp = str(directory), str(self.tmp)
        self._stopped: str | None = None  # set by stop(): what is still queued is deferred
        self._names = itertools.count()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None  # the writer died of this
        self.spool: str | None = None  # while open: where other processes write messages

    def __enter__(self) -> Self:
        spool = self.tmp / f"{SPOOL_PREFIX}{os.getpid()}-{secrets.token_hex(4)}@{_HOST}"
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            _remove_dead_spools(self.tmp)
            spool.mkdir(mode=0o700)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create outbox directory {self.directory}: {exc.strerror or exc}"
            ) from exc
        self.spool = str(spool)
        self._thread = threading.Thread(target=self._write_loop, name="outbox-writer")
        self._thread.start()
        return self

    # The run's side ---------------------------------------------------------------------

    def submit(self, message: Outgoing) -> None:
        self._put(message)

    def stop(self, reason: str) -> None:
        """What is queued and not yet written is reported deferred, never written."""
        self._stopped = reason

    def collect(self, *, wait: bool = False) -> list[Outcome]:
        if wait and self._thread is not None and self._thread.is_alive():
            request = _Flush()
            self._put(request)
            while not request.done.wait(_PUT_WAIT):
                self._check_writer()
        self._check_writer()
        outcomes = []
        while self._outcomes:
            outcomes.append(self._outcomes.popleft())
        return outcomes

    def _put(self, item: Outgoing | _Flush | object) -> None:
        while True:
            self._check_writer()
            try:
                self._queue.put(item, timeout=_PUT_WAIT)
                return
            except queue.Full:
                continue

    def _check_writer(self) -> None:
        if self._failure is not None:
            raise DeliveryError(f"the outbox writer failed: {self._failure}") from self._failure

    # The writer thread ------------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=OUTBOX_IDLE_FLUSH if self._written else None)
                except queue.Empty:  # idle: what is written becomes durable now
                    self._flush()
                    continue
                if item is _STOP:
                    return
                if isinstance(item, _Flush):
                    self._flush()
                    item.done.set()
                elif isinstance(item, Outgoing):
                    self._write(item)
                    if len(self._written) >= self.batch:
                        self._flush()
        except BaseException as exc:  # a bug, not a disk error: the run's thread raises it
            self._failure = exc
            log.exception("the outbox writer failed")

    def _write(self, message: Outgoing) -> None:
        if self._stopped is not None:
            if message.path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(message.path)  # noqa: PTH108 - strings, see below
            self._outcomes.append(Outcome(message.key, "deferred", self._stopped))
            return
        # Plain strings, not Path objects: this runs for every message of a run.
        name = eml_name(message.message_id)
        final = os.path.join(self._directory, name)  # noqa: PTH118 - see above
        if message.path is not None:  # written by a renderer, in the spool
            self._written.append((message.key, message.path, final))
            return
        stem = name.removesuffix(".eml")[:40]
        temporary = f"{self._tmp}{os.sep}{stem}.{os.getpid()}.{next(self._names)}.tmp"
        try:
            write_file(temporary, message.data)
        except OSError as exc:
            # our side of the hand-over failed: retry at once, once the folder is fixed
            error = f"cannot write {final}: {exc.strerror or exc}"
            self._outcomes.append(Outcome(message.key, "deferred", error))
            return
        self._written.append((message.key, temporary, final))

    def _flush(self) -> None:
        written, self._written = self._written, []
        if not written:
            return
        try:
            sync_filesystem(self.tmp)
            for _, temporary, final in written:
                os.replace(temporary, final)  # noqa: PTH105 - strings, see _write
            sync_filesystem(self.directory)
        except OSError as exc:
            error = f"cannot write to {self.directory}: {exc.strerror or exc}"
            self._outcomes.extend(Outcome(key, "deferred", error) for key, _, _ in written)
            return
        self._outcomes.extend(Outcome(key, "sent") for key, _, _ in written)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is not None:
            self._stopped = self._stopped or "the run ended"
            if self._thread.is_alive():
                self._queue.put(_STOP)  # the writer is alive: it takes it
            self._thread.join()
            self._thread = None
        for _, temporary, _ in self._written:  # never reported sent: the next run resends
            with contextlib.suppress(OSError):
                os.unlink(temporary)  # noqa: PTH108 - strings, see _write
        self._written = []
        if self.spool is not None:  # with any message a renderer wrote but nobody handed over
            shutil.rmtree(self.spool, ignore_errors=True)
            self.spool = None


_HOST = socket.gethostname().replace(os.sep, "_")


def _remove_dead_spools(tmp: Path) -> None:
    """Spools of senders of this host whose process is gone (killed before closing); an
    outbox shared with other hosts keeps theirs."""
    for path in tmp.glob(f"{SPOOL_PREFIX}*-*@*"):
        if path.name.rpartition("@")[2] != _HOST:
            continue
        pid = path.name.removeprefix(SPOOL_PREFIX).partition("-")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


class TransportSender:
    """Sends through a one-message-at-a-time :class:`Transport`; outcomes at once."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.name = transport.name
        self._outcomes: list[Outcome] = []
        self._broken: str | None = None  # a failure on our side: defer the rest

    def __enter__(self) -> Self:
        self.transport.__enter__()
        return self

    def submit(self, message: Outgoing) -> None:
        if self._broken is not None:
            self._outcomes.append(Outcome(message.key, "deferred", self._broken))
            return
        try:
            self.transport.send_bytes(
                message.data,
                envelope_from=message.envelope_from,
                recipient=message.recipient,
                message_id=message.message_id,
            )
        except TransientDeliveryError as exc:
            self._outcomes.append(Outcome(message.key, "transient", str(exc)))
        except PermanentDeliveryError as exc:
            self._outcomes.append(Outcome(message.key, "permanent", str(exc), bounce=True))
        except DeliveryError as exc:
            # not about this message (a configuration problem): nothing else will go either
            self._broken = str(exc)
            self._outcomes.append(Outcome(message.key, "deferred", str(exc)))
        else:
            self._outcomes.append(Outcome(message.key, "sent"))

    def stop(self, reason: str) -> None:
        """Each message is sent when submitted: nothing is left to defer."""

    def collect(self, *, wait: bool = False) -> list[Outcome]:
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    @property
    def broken(self) -> str | None:
        """Why sending stopped (a failure on our side), or None."""
        return self._broken

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.transport.__exit__(exc_type, exc, tb)
