"""Outbox transport: each message becomes one ``.eml`` file in a directory.

The embedded default: nothing leaves the machine, and any mail client opens the files.
A file is named after the message's Message-ID, so sending the same digest again (a retry
after a crash) replaces the file instead of adding a second one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from email.message import EmailMessage
from pathlib import Path

from digest.delivery.base import BaseTransport
from digest.delivery.wire import message_bytes
from digest.errors import DeliveryError

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]")
_MAX_STEM = 150  # well under the usual 255-byte file name limit, leaving room for the hash


def eml_name(message_id: str) -> str:
    """A safe, deterministic file name for a Message-ID, e.g. ``key@host.eml``.

    Characters outside a conservative set become ``_``; when that (or truncation) changed
    the id, a short hash of the original keeps two different ids from sharing a file.
    """
    raw = message_id.strip().removeprefix("<").removesuffix(">")
    if not raw:
        raise ValueError("empty Message-ID")
    stem = _UNSAFE.sub("_", raw).lstrip(".")[:_MAX_STEM]
    if stem != raw:
        digest = hashlib.sha256(message_id.strip().encode("utf-8")).hexdigest()[:12]
        stem = f"{stem}-{digest}"
    return f"{stem}.eml"


class OutboxTransport(BaseTransport):
    """Writes each message to ``<directory>/<Message-ID>.eml``, atomically.

    The bytes are those that SMTP would send (CRLF line ends, 998-character lines). The
    envelope is not recorded: the file is the message, untouched.
    """

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def open(self) -> None:
        self._ensure_directory()

    def path_for(self, message: EmailMessage) -> Path:
        """Where ``message`` is (or would be) written; ValueError without a Message-ID."""
        message_id = message["Message-ID"]
        if not message_id:
            # A composer bug, not a delivery failure: every digest carries a Message-ID.
            raise ValueError("message has no Message-ID header")
        return self.directory / eml_name(str(message_id))

    def send(self, message: EmailMessage, *, envelope_from: str, recipient: str) -> None:
        """Write ``message`` to its ``.eml`` file, replacing an earlier copy of the same id.

        Raises :class:`DeliveryError` when the directory cannot be written (a configuration
        problem, not a per-recipient one).
        """
        self._write(self.path_for(message), message_bytes(message))

    def send_bytes(
        self, data: bytes, *, envelope_from: str, recipient: str, message_id: str
    ) -> None:
        """Write prebuilt ``data`` to the file named after ``message_id``, as ``send`` does.

        ValueError for an empty ``message_id`` (a composer bug, as in :meth:`path_for`).
        """
        self._write(self.directory / eml_name(message_id), data)

    def _write(self, target: Path, data: bytes) -> None:
        self._ensure_directory()
        try:
            _atomic_write(target, data)
        except OSError as exc:
            raise DeliveryError(f"cannot write {target}: {exc.strerror or exc}") from exc

    def _ensure_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create outbox directory {self.directory}: {exc.strerror or exc}"
            ) from exc


def write_file(path: str, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to the file ``path`` (created with mode 0600: links hold tokens;
    ``exclusive``: never an existing one). Raises OSError with no partial file left.

    Plain string paths and ``os`` calls: this runs for every message of a run."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    try:
        fd = os.open(path, flags, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)  # noqa: PTH108 - a plain string path, see above
        raise


def _atomic_write(target: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory + ``os.replace``.

    Readers (a mail catcher, ``digest status``) never see a half-written file, and a crash
    leaves at worst a stray hidden ``.tmp`` file, never a truncated ``.eml``.
    """
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
