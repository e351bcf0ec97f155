"""Reading a listing file: size limits and transparent gunzip, before any parsing."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Protocol

from digest.errors import ListingError, ListingTooLargeError
from digest.parsers.common import listing_error

_CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _too_large(name: str, what: str, max_bytes: int) -> ListingError:
    return listing_error(
        name, f"{what} is larger than the limit of {max_bytes:,} bytes", cls=ListingTooLargeError
    )


def _read_capped(stream: _Readable, name: str, max_bytes: int, what: str) -> bytes:
    """Read at most ``max_bytes``; one byte more means the stream is over the limit."""
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(min(_CHUNK, max_bytes + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(name, what, max_bytes)
    return b"".join(chunks)


def read_bytes(path: Path, *, max_bytes: int) -> bytes:
    """The listing's bytes, gunzipped when it is gzip (by name or by content).

    The file size is checked before reading, and the decompressed size while decompressing,
    so neither a huge file nor a small gzip bomb is ever held in memory whole.
    """
    name = str(path)
    try:
        with path.open("rb") as stream:
            if os.fstat(stream.fileno()).st_size > max_bytes:
                raise _too_large(name, "the file", max_bytes)
            compressed = path.suffix.lower() == ".gz" or stream.read(2) == _GZIP_MAGIC
            stream.seek(0)
            if not compressed:
                return _read_capped(stream, name, max_bytes, "the file")
            try:
                with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
                    return _read_capped(unzipped, name, max_bytes, "the decompressed listing")
            except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
                raise listing_error(name, f"corrupt gzip data: {exc}") from exc
    except OSError as exc:
        raise listing_error(name, f"cannot read: {exc.strerror or exc}", cls=ListingError) from exc
