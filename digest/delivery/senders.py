"""Senders for the in-process run: the outbox in batches, and any one-at-a-time transport.

:class:`OutboxSender` writes Maildir-style: each message to ``<outbox>/.tmp/`` first, then,
once a batch is written, one filesystem sync (``syncfs``) makes the whole batch durable, the
files are renamed into ``<outbox>/`` (an atomic rename on the same filesystem) and the
directory is synced; only then are the messages reported ``sent``, so the ledger never
says ``sent`` for a file a crash could still lose. Readers never see a half-written file.

:class:`TransportSender` adapts a one-message-at-a-time :class:`~digest.delivery.base.Transport`
(a test double, a custom transport): each message is sent when
submitted and its outcome is known at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from digest.delivery.base import Outcome, Outgoing, Transport
from digest.delivery.outbox import eml_name
from digest.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

log = logging.getLogger(__name__)

OUTBOX_BATCH = 256  # messages made durable together


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


class OutboxSender:
    """Writes each message to ``<directory>/<Message-ID>.eml``, durable in batches."""

    name = "outbox"

    def __init__(self, directory: Path, *, batch: int = OUTBOX_BATCH) -> None:
        self.directory = directory
        self.tmp = directory / ".tmp"
        self.batch = batch
        self._written: list[tuple[int, Path, Path]] = []  # key, temporary, final
        self._failed: list[Outcome] = []

    def __enter__(self) -> Self:
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create outbox directory {self.directory}: {exc.strerror or exc}"
            ) from exc
        return self

    def submit(self, message: Outgoing) -> None:
        final = self.directory / eml_name(message.message_id)
        try:
            fd, name = tempfile.mkstemp(dir=self.tmp, prefix=final.stem[:40] + ".", suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.data)
        except OSError as exc:
            # our side of the hand-over failed: retry at once, once the folder is fixed
            error = f"cannot write {final}: {exc.strerror or exc}"
            self._failed.append(Outcome(message.key, "deferred", error))
            return
        self._written.append((message.key, Path(name), final))

    def stop(self, reason: str) -> None:
        """Nothing is queued here: a submitted message is written at once."""

    def collect(self, *, wait: bool = False) -> list[Outcome]:
        outcomes, self._failed = self._failed, []
        if self._written and (wait or len(self._written) >= self.batch):
            outcomes.extend(self._flush())
        return outcomes

    def _flush(self) -> list[Outcome]:
        written, self._written = self._written, []
        try:
            sync_filesystem(self.tmp)
            for _, temporary, final in written:
                temporary.replace(final)
            sync_filesystem(self.directory)
        except OSError as exc:
            error = f"cannot write to {self.directory}: {exc.strerror or exc}"
            return [Outcome(key, "deferred", error) for key, _, _ in written]
        return [Outcome(key, "sent") for key, _, _ in written]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for _, temporary, _ in self._written:  # never reported sent: the next run resends
            temporary.unlink(missing_ok=True)
        self._written = []


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
