"""Quoted-printable bodies, byte for byte as :mod:`email` writes them, without its cost.

The reference is ``MIMEPart.set_content(text, charset="utf-8", cte="quoted-printable")``
under a 76-column policy (``message._PART_POLICY``) serialized with CRLF line ends: the text
is UTF-8 encoded, its lines split at CR, LF or CRLF and joined with LF plus a final LF
(``contentmanager._encode_text``), then ``quoprimime.body_encode(body, 76)``:

1. every byte outside ``\\t``, space and ``!``-``~`` except ``=`` becomes ``=XX``
   (upper-case hex); a dot, a ``From`` or a lone space is left alone;
2. each line longer than 76 characters is cut into pieces of 75 encoded characters plus a
   ``=`` soft break, a piece ending one or two characters early when it would split an
   ``=XX`` escape (the escape's ``=`` then doubles as the soft break and the next piece
   starts on it); cutting stops once 76 characters or fewer remain;
3. a space or tab ending a line is protected by an escape or a soft break, depending on
   the room left on the last piece.

``quoprimime`` does step 1 with ``str.translate`` and a dictionary, about 13 ns a
character, and steps 2-3 in a Python loop over every line: most of the cost of building a
digest message. Here all three steps are one pass of a Numba-compiled kernel over the UTF-8
bytes (:func:`encode_lines`, ~1-2 ns a byte), which the renderer processes load from
Numba's disk cache. (Remembering folded lines, which recur in many digests, was measured to
gain nothing; ``binascii.b2a_qp`` is no shortcut either: it escapes a lone ".", folds a line
ending in an escape differently and protects trailing white space its own way.)
``tests/test_qp.py`` and ``tests/test_qp_folding.py`` check the output against
``set_content`` on crafted edge cases and on random text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from digest.config.jit import njit_cached

_MAX = 76  # RFC 2045 §6.7: encoded lines at most 76 characters (the policy's line length)
_PIECE = _MAX - 1  # room left for the "=" soft break
_EQ = 0x3D
Bytes = npt.NDArray[np.uint8]
Flags = npt.NDArray[np.bool_]
_HEX = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
# The bytes quoted-printable leaves as they are (quoprimime._QUOPRI_BODY_MAP): tab, and
# space to "~" but "="; LF is the line break.
_SAFE = np.zeros(256, dtype=np.bool_)
_SAFE[0x20:0x7F] = True
_SAFE[[_EQ, 0x09]] = [False, True]


def encode_lines(  # noqa: PLR0912, PLR0915  # one compiled loop on purpose
    data: Bytes, hexdigits: Bytes, safe: Flags, out: Bytes, scratch: Bytes
) -> int:
    """Steps 1-3 over ``data`` (UTF-8, LF line ends, no CR) into ``out``; its length.

    Each line (the text after the last LF counts as one; the body always ends with a line
    break) is escaped into ``scratch``, then cut as the loop in ``quoprimime.body_encode``
    cuts it, with CRLF line ends and soft breaks (the generator turns the reference's LF
    into CRLF on the wire). Compiled with Numba; plain Python runs it too (slowly).
    """
    n = data.shape[0]
    o = 0
    i = 0
    while True:
        j = i
        while j < n and data[j] != 10:
            j += 1
        # step 1: the line's bytes, escaped
        m = 0
        for k in range(i, j):
            b = data[k]
            if safe[b]:
                scratch[m] = b
                m += 1
            else:
                scratch[m] = _EQ
                scratch[m + 1] = hexdigits[b >> 4]
                scratch[m + 2] = hexdigits[b & 15]
                m += 3
        # step 2: pieces of 75 characters and a soft break while more than 76 remain
        start = 0
        last_start = m - 1 - _MAX
        while start <= last_start:
            stop = start + _PIECE
            if scratch[stop - 2] == _EQ:  # an escape at the cut: its "=" ends this piece
                end, next_start = stop - 1, stop - 2
            elif scratch[stop - 1] == _EQ:
                end, next_start = stop, stop - 1
            else:
                end, next_start = stop, stop
            out[o : o + end - start] = scratch[start:end]
            o += end - start
            if end == stop and next_start == stop:
                out[o] = _EQ
                o += 1
            out[o] = 13
            out[o + 1] = 10
            o += 2
            start = next_start
        # step 3: the last piece, a trailing space or tab protected
        if m > 0 and (scratch[m - 1] == 32 or scratch[m - 1] == 9):
            out[o : o + m - 1 - start] = scratch[start : m - 1]
            o += m - 1 - start
            last = scratch[m - 1]
            room = start - last_start
            if room >= 3:  # the escape fits
                out[o] = _EQ
                out[o + 1] = hexdigits[last >> 4]
                out[o + 2] = hexdigits[last & 15]
                o += 3
            elif room == 2:  # the character, then a soft break
                out[o] = last
                out[o + 1] = _EQ
                out[o + 2] = 13
                out[o + 3] = 10
                o += 4
            else:  # a soft break, then the escape
                out[o] = _EQ
                out[o + 1] = 13
                out[o + 2] = 10
                out[o + 3] = _EQ
                out[o + 4] = hexdigits[last >> 4]
                out[o + 5] = hexdigits[last & 15]
                o += 6
        else:
            out[o : o + m - start] = scratch[start:m]
            o += m - start
        out[o] = 13
        out[o + 1] = 10
        o += 2
        if j >= n:
            break
        i = j + 1
        if i == n:  # the text ended with a line break: no empty line after it
            break
    return o


_compiled: Callable[..., Any] | None = None


def _kernel() -> Callable[..., Any]:
    global _compiled  # noqa: PLW0603  # one compiled function per process
    if _compiled is None:
        _compiled = njit_cached(encode_lines, "the quoted-printable kernel")
    return _compiled


def compile_kernel() -> None:
    """Compile the kernel now (or load it from Numba's disk cache): ``make install`` does,
    so that no renderer pays the first compilation (a few seconds)."""
    qp_body("a = b \n")


def qp_body(text: str | bytes) -> bytes:
    """``text`` as the quoted-printable body of a ``text/*; charset="utf-8"`` part (or
    ``text`` already encoded as UTF-8, when the caller has it).

    The exact bytes :func:`~digest.delivery.wire.message_bytes` writes after the part's
    blank line, CRLF line ends included. Raises ``UnicodeEncodeError`` on lone surrogates,
    as ``set_content`` does.
    """
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    if b"\r" in data:  # rare: normalize CR and CRLF to LF, as _encode_text's splitlines()
        data = b"\n".join(data.splitlines()) + b"\n"
    n = len(data)
    # Every byte escaped (3) plus, per line, 3 for each piece of at least 73 characters (a
    # soft break, a repeated "="), 5 for the last piece's protected space and 2 for the end.
    out = _buffer("out", 3 * n + (3 * n) // 18 + 8 * (data.count(b"\n") + 1))
    scratch = _buffer("scratch", 3 * n + 3)  # one line, escaped
    length = _kernel()(np.frombuffer(data, dtype=np.uint8), _HEX, _SAFE, out, scratch)
    return out[:length].tobytes()


_buffers = threading.local()


def _buffer(name: str, size: int) -> Bytes:
    """A work buffer of at least ``size`` bytes, kept per thread: a fresh one for every
    body would cost a page fault per 4 KB touched (a ~200 KB buffer is its own mapping)."""
    buffer: Bytes | None = getattr(_buffers, name, None)
    if buffer is None or buffer.shape[0] < size:
        buffer = np.empty(max(size, 2 * (0 if buffer is None else buffer.shape[0])), np.uint8)
        setattr(_buffers, name, buffer)
    return buffer
