"""DKIM signatures (RFC 6376: rsa-sha256, relaxed/relaxed) with the RSA done by ``cryptography``.

:class:`DkimSigner` writes the DKIM-Signature header line that dkimpy's ``dkim.sign(message,
selector, domain, key, canonicalize=(b"relaxed", b"relaxed"), include_headers=…)`` writes,
byte for byte for the same ``t=`` (RSASSA-PKCS1-v1_5 is deterministic; ``tests/
test_dkim_signer.py`` compares them). dkimpy computes the RSA signature in pure Python (~8 ms
for a 2048-bit key); here OpenSSL does it, and the key is parsed once per signer, not per
message. Only the signing is done here: dkimpy still verifies in the tests.

The signature header is laid out as dkimpy lays it out: tags ``v a c d i q s t h bh b`` in that
order, joined by ``"; "`` and folded at column 72 (:func:`_fold`), first with a placeholder
``b=`` that the header hash leaves out (§3.5: the hash covers the signature header with an
empty ``b=``), then with the signature.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from digest.errors import ConfigError, RenderError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

_Field = tuple[bytes, bytes]  # a header field's name and its value (folds and CRLF included)
_CRLF = b"\r\n"
_DIGEST_INFO = 51  # bytes of a SHA-256 DigestInfo (RFC 8017 §9.2, note 1)
_NAME = b"DKIM-Signature"
# dkimpy folds the tag list at column 72, counting the field name on the first line.
_WIDTH = 72
# The placeholder signature is long enough that b= starts a line of its own before signing,
# so that writing the real signature moves no fold among the tags the hash covers.
_PLACEHOLDER = b"0" * 60
# A header field name (RFC 5322 §3.6.8: printable ASCII but ":"), matched as dkimpy's parser
# matches it: the shortest run of printable characters before a colon.
_FIELD = re.compile(rb"([\x21-\x7e]+?):")
_LINE_END = re.compile(rb"\r?\n")
# Tag values the signer writes verbatim: no whitespace, ";" or "=" (which would end the tag,
# or be read as a b= tag by a verifier).
_TAG_VALUE = re.compile(r"[\x21-\x3a\x3c\x3e-\x7e]+")


class DkimSigner:
    """Signs messages for one selector, domain and RSA key (parsed here, once)."""

    def __init__(
        self, *, selector: str, domain: str, private_key: bytes, headers: Sequence[str]
    ) -> None:
        for what, value in (("selector", selector), ("domain", domain)):
            if not _TAG_VALUE.fullmatch(value):
                raise ConfigError(f"DKIM {what} {value!r} is not a plain ASCII DNS name")
        self._headers = tuple(name.lower().encode("ascii") for name in headers)
        if b"from" not in self._headers:
            raise ConfigError("a DKIM signature must cover the From header (RFC 6376 §5.4)")
        self._key = _load_key(private_key)
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415 - optional extra
        from cryptography.hazmat.primitives.asymmetric import padding, utils  # noqa: PLC0415 - optional extra

        self._padding = padding.PKCS1v15()
        self._prehashed = utils.Prehashed(hashes.SHA256())
        d = domain.encode()
        fixed = (b"v=1", b"a=rsa-sha256", b"c=relaxed/relaxed", b"d=" + d, b"i=@" + d)
        self._tags = b"; ".join((*fixed, b"q=dns/txt", b"s=" + selector.encode(), b"t="))
        self._h_tag = b"; h=" + b" : ".join(self._headers) + b"; bh="

    def signature(self, message: bytes, *, timestamp: int | None = None) -> bytes:
        """The ``DKIM-Signature: …`` header line (CRLF-terminated and folded) for ``message``.

        ``timestamp`` is the ``t=`` tag, in seconds since the epoch (default: now).
        """
        headers, body = _split(message)
        if timestamp is None:
            timestamp = int(time.time())
        body_hash = base64.b64encode(hashlib.sha256(_relaxed_body(body)).digest())
        tags = self._tags + b"%d" % timestamp + self._h_tag + body_hash + b"; b="
        unsigned = _fold(tags + _PLACEHOLDER, len(_NAME))
        # §3.5: the signature header is hashed with an empty b= value and no trailing CRLF.
        unsigned = unsigned[: unsigned.rindex(b"b=") + 2]
        hasher = hashlib.sha256()
        for name, value in _select(headers, self._headers):
            hasher.update(name + b":" + _relaxed_value(value) + _CRLF)
        hasher.update(b"dkim-signature:" + _relaxed_value(b" " + unsigned))
        signed = self._key.sign(hasher.digest(), self._padding, self._prehashed)
        return _NAME + b": " + _fold(tags + base64.b64encode(signed) + _CRLF, len(_NAME))


def _load_key(pem: bytes) -> RSAPrivateKey:
    """The RSA key of a PEM file (PKCS#1 or PKCS#8, unencrypted), or a one-line ConfigError."""
    try:
        from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415 - optional extra
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey  # noqa: PLC0415 - optional extra
        from cryptography.hazmat.primitives.serialization import load_pem_private_key  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        raise ConfigError(
            "DKIM signing needs cryptography: pip install 'paper-digest[dkim]'"
        ) from exc
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # ValueError: not PEM or a damaged key; TypeError: encrypted (a password is needed)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"DKIM signing failed (check the key): {reason}") from exc
    if not isinstance(key, RSAPrivateKey):
        raise ConfigError("DKIM signing failed (check the key): not an RSA private key")
    if (key.key_size + 7) // 8 < _DIGEST_INFO + 11:  # RFC 8017 §9.2: no room for the hash
        raise ConfigError(f"DKIM signing failed (check the key): {key.key_size}-bit key")
    return key


def _split(message: bytes) -> tuple[list[_Field], bytes]:
    """Header fields ``(name, value with its CRLFs)`` and the body, as dkimpy parses them.

    Lines may end in CRLF or LF; the body comes back with CRLF line ends. A "From " line
    (mbox) among the headers is skipped.
    """
    if message.count(b"\n") != message.count(_CRLF):
        message = _LINE_END.sub(_CRLF, message)
    if message.startswith(_CRLF):
        block, body = b"", message[2:]
    else:
        end = message.find(b"\r\n\r\n")
        if end < 0:
            block, body = message.removesuffix(_CRLF), b""
        else:
            block, body = message[:end], message[end + 4 :]
    fields: list[list[bytes]] = []
    for line in block.split(_CRLF) if block else ():
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise RenderError("cannot DKIM-sign: the message starts with a folded line")
            fields[-1][1] += line + _CRLF
            continue
        match = _FIELD.match(line)
        if match is not None:
            fields.append([match.group(1), line[match.end() :] + _CRLF])
        elif not line.startswith(b"From "):
            raise RenderError(f"cannot DKIM-sign: not a header line: {line[:60]!r}")
    return [(name, value) for name, value in fields], body


def _select(headers: list[_Field], names: Sequence[bytes]) -> list[_Field]:
    """The fields ``names`` sign, lower-cased (§5.4.2: a name listed twice signs the next
    instance up; a name with no instance left signs nothing)."""
    lowered = [name.lower() for name, _ in headers]
    below: dict[bytes, int] = {}
    selected = []
    for name in names:
        index = below.get(name, len(headers))
        while index > 0:
            index -= 1
            if lowered[index] == name:
                selected.append((lowered[index].rstrip(), headers[index][1]))
                break
        below[name] = index
    return selected


def _one_space(text: bytes) -> bytes:
    """Every run of spaces and tabs as one space (§3.4.2, §3.4.4).

    With tabs made spaces, splitting at double spaces leaves a run of n spaces as n // 2
    separators (empty pieces between them) and, n odd, one space before the next piece: one
    pass of C over the text where a regular expression steps through it several times
    slower.
    """
    if b"\t" in text:
        text = text.replace(b"\t", b" ")
    pieces = text.split(b"  ")
    if len(pieces) == 1:
        return text
    # Each piece after the first follows a run: one space, whatever was left of the run gone.
    kept = [piece.lstrip(b" ") for piece in pieces[1:] if piece]
    joined = b" ".join([pieces[0], *kept])
    return joined if pieces[-1] else joined + b" "  # a run at the very end


def _relaxed_value(value: bytes) -> bytes:
    """§3.4.2: unfold, runs of WSP to one space, no WSP at either end."""
    return _one_space(value.replace(_CRLF, b"").replace(b"\n", b"")).strip()


def _relaxed_body(body: bytes) -> bytes:
    """§3.4.3-3.4.4 as dkimpy does it: WSP runs to one space, none at line ends, trailing empty
    lines removed, a last line without CRLF given one; an empty body hashes as empty."""
    body = _one_space(body).replace(b" \r\n", _CRLF)
    if not body.endswith(_CRLF):
        body += _CRLF
    end = len(body)
    while end >= 4 and body.startswith(_CRLF, end - 4, end - 2):
        end -= 2
    body = body[:end]
    return b"" if body == _CRLF else body


def _fold(value: bytes, name_length: int) -> bytes:
    """dkimpy's folding of the tag list: at the last space that keeps a line within 72
    columns (the first line counts ``name_length``), mid-tag when no space does."""
    width = _WIDTH - name_length
    if len(value) <= width or (value.endswith(_CRLF) and len(value) <= width + 2):
        return value
    lines = []
    while len(value) > width:
        space = value.rfind(b" ", 0, width)
        if space < 0:
            lines.append(value[:width])
            value = value[width:]
        else:
            lines.append(value[:space])
            value = value[space + 1 :]
        width = _WIDTH - 1  # a continuation line starts with one space
    lines.append(value)
    return b"\r\n ".join(lines)
