"""Numba compilation shared by the compiled kernels (ranking, quoted-printable bodies).

Numba is imported only when a kernel is first needed (~0.2 s and ~100 MB per process), and
each kernel is compiled at most once per process, from Numba's disk cache when it can be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def njit_cached(function: Callable[..., Any], what: str) -> Callable[..., Any]:
    """``function`` compiled by ``numba.njit(cache=True, nogil=True)``; compiled in memory
    when no cache location is writable (``what`` names it in the log)."""
    import numba  # noqa: PLC0415  # ~0.2 s and ~100 MB: only when a kernel runs

    try:
        return numba.njit(cache=True, nogil=True)(function)
    except RuntimeError as exc:  # no writable cache location: compile every process
        log.info("numba cannot cache %s (%s); compiling in memory", what, exc)
        return numba.njit(nogil=True)(function)
