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
digest message. Here step 1 is a handful of ``bytes.replace`` passes over the whole body
(one for ``=``, one per distinct unsafe byte that occurs); steps 2-3 run only on lines that
are long or end in white space. (Remembering folded lines, which recur in many digests, was
measured to gain nothing: hashing a line costs about what folding it does.)
(``binascii.b2a_qp`` is no shortcut: it escapes a lone ".", folds a line ending in an escape
differently and protects trailing white space its own way, and it is slower than this.)
``tests/test_fastmime.py`` checks the output against ``set_content`` on crafted edge cases
and on random text.
"""

from __future__ import annotations

_MAX = 76  # RFC 2045 §6.7: encoded lines at most 76 characters (the policy's line length)
_PIECE = _MAX - 1  # room left for the "=" soft break
_EQ = 0x3D
_SOFT_BREAK = b"=\r\n"
_TRAILING_WSP = (b" ", b"\t")

# The bytes quoted-printable leaves as they are (quoprimime._QUOPRI_BODY_MAP), "=" aside:
# it is escaped first, and every escape adds only "=" and upper-case hex digits.
_SAFE = bytes(b for b in range(0x20, 0x7F) if b != _EQ) + b"\t\n"
_SAFE_OR_EQ = _SAFE + b"="
_BYTE = [bytes((b,)) for b in range(256)]
_ESCAPE = [b"=%02X" % b for b in range(256)]


def _escape(body: bytes) -> bytes:
    """Step 1 on LF-separated UTF-8 bytes (a single-byte ``replace`` is a fast C loop)."""
    if b"=" in body:
        body = body.replace(b"=", b"=3D")
    for byte in set(body.translate(None, _SAFE_OR_EQ)):
        body = body.replace(_BYTE[byte], _ESCAPE[byte])
    return body


def _fold(line: bytes) -> bytes:
    """Steps 2 and 3 for one escaped line that is long or ends in white space.

    A transcription of the loop in ``quoprimime.body_encode`` on bytes, with CRLF soft
    breaks (the generator turns the reference's LF into CRLF on the wire).
    """
    out: list[bytes] = []
    append = out.append
    start = 0
    last_start = len(line) - 1 - _MAX
    while start <= last_start:
        stop = start + _PIECE
        if line[stop - 2] == _EQ:  # an escape at the cut: its "=" ends this piece
            append(line[start : stop - 1])
            start = stop - 2
        elif line[stop - 1] == _EQ:
            append(line[start:stop])
            start = stop - 1
        else:
            append(line[start:stop] + b"=")
            start = stop
    if line[-1:] in _TRAILING_WSP:
        room = start - last_start
        if room >= 3:
            tail = _ESCAPE[line[-1]]
        elif room == 2:
            tail = line[-1:] + _SOFT_BREAK
        else:
            tail = _SOFT_BREAK + _ESCAPE[line[-1]]
        append(line[start:-1] + tail)
    else:
        append(line[start:])
    return b"\r\n".join(out)


def qp_body(text: str) -> bytes:
    """``text`` as the quoted-printable body of a ``text/*; charset="utf-8"`` part.

    The exact bytes :func:`~digest.delivery.wire.message_bytes` writes after the part's
    blank line, CRLF line ends included. Raises ``UnicodeEncodeError`` on lone surrogates,
    as ``set_content`` does.
    """
    data = text.encode("utf-8")
    if b"\r" in data:  # rare: normalize CR and CRLF to LF, as _encode_text's splitlines()
        data = b"\n".join(data.splitlines()) + b"\n"
    lines = _escape(data).split(b"\n")
    if data[-1:] != b"\n":
        lines.append(b"")  # the body always ends with a line break
    for i, line in enumerate(lines):
        if len(line) > _MAX or line[-1:] in _TRAILING_WSP:
            lines[i] = _fold(line)
    return b"\r\n".join(lines)
