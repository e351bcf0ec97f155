"""Give the C heap's free memory back to the operating system after a big transient phase.

Building the paper index and the profile plan allocates hundreds of MB of temporaries
(NumPy arrays, lists) and frees them. glibc's allocator keeps freed heap memory for reuse
(after large frees it also raises its mmap threshold, so later big arrays land on the heap),
but the objects that come next (a million picks) are allocated by Python's own arena
allocator, which never reuses it: without a trim, a 100,000-profile run holds about 130 MB
more than it uses (docs/benchmarks.md, "Scale"). ``malloc_trim(0)`` returns the free pages;
it takes a few milliseconds. On a C library without it (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


def release_free_memory() -> None:
    """Return the C heap's free pages to the OS where the C library can (glibc)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
