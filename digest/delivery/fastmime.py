"""A digest message's wire bytes without building an ``email.message`` object each time.

The specification is the reference builder: ``message_bytes(add_dkim_signature(
build_message(view, rendered, options=…, sent_at=…), options))``. :func:`wire_message`
returns exactly those bytes (``tests/test_fastmime.py`` compares them on hostile and random
input) at a fraction of the cost:

- headers that are the same for every message of a run (From, List-Id,
  List-Unsubscribe-Post, Precedence, MIME-Version, the parts' headers) are folded once per
  :class:`MessageOptions` by the reference code itself, and the Date once per ``sent_at``;
- Message-ID and the multipart Content-Type differ only by a hex digest: their line is the
  reference's line for a sample digest, with the digest swapped in;
- To and Subject take a direct path when they are plain ASCII that the reference would
  write unfolded (no RFC 2047 word to decode, under 998 characters); otherwise the reference
  folder does them, and subjects (many digests share one) are remembered in an LRU;
- List-Unsubscribe keeps its verbatim folding at the commas (RFC 2369 §2);
- bodies are quoted-printable from :func:`~digest.delivery.qp.qp_body`.

Everything here is pure: no database, and the DKIM key is read once per options, so a
:class:`MessageWriter` can live in a worker process for a whole run::

    wire = wire_message(view, renderer.render(view), options=options, sent_at=now)
    transport.send_bytes(wire.data, envelope_from=…, recipient=…, message_id=wire.message_id)

The caches here and in :mod:`~digest.render.display` are bounded LRUs: about 10 MB per
process once full.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email._header_value_parser import quote_string
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

# The reference builder's own helpers (private there): the fast path must build what it builds.
from digest.delivery.message import (
    MAIL_POLICY,
    MessageOptions,
    _mail_domain,
    _text_part,
    list_unsubscribe,
    message_id_for,
    signer_for,
)
from digest.delivery.qp import qp_body
from digest.delivery.wire import WIRE_POLICY
from digest.errors import RenderError
from digest.render.display import as_utc, single_line
from digest.render.email import RenderedEmail
from digest.render.views import DigestView

SUBJECT_CACHE_SIZE = 16384  # folded non-ASCII subjects (~200 bytes each)
_MAX_LINE = 998  # RFC 5322 §2.1.1: the wire policy folds ASCII headers only past this
_CRLF = b"\r\n"
# RFC 5322 atext: an address made of dot-atoms parses without defects and prints unquoted.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*")
_SPECIALS = frozenset('()<>@,:;."[]\\')  # a display name with any of these is quoted


def reference_header(name: str, value: object) -> bytes:
    """One header line exactly as ``build_message`` + ``message_bytes`` write it."""
    return WIRE_POLICY.fold_binary(name, MAIL_POLICY.header_store_parse(name, value)[1])


@functools.lru_cache(maxsize=SUBJECT_CACHE_SIZE)
def _folded_subject(subject: str) -> bytes:
    return reference_header("Subject", subject)


@functools.lru_cache(maxsize=16)
def _date_header(sent_at: datetime, offset: timedelta | None) -> bytes:
    # Keyed with the UTC offset: equal instants in two zones are equal datetimes but are
    # written with different wall times.
    return reference_header("Date", format_datetime(as_utc(sent_at)))


def _plain(name: str, value: str) -> bytes | None:
    """``name: value`` when the reference writes it so: ASCII, no RFC 2047 word, one line."""
    if value and value.isascii() and "=?" not in value and len(name) + 2 + len(value) <= _MAX_LINE:
        return f"{name}: {value}\r\n".encode("ascii")
    return None


def _around_sample(line: bytes, sample: str) -> tuple[bytes, bytes] | None:
    """Split a reference line around the one place ``sample`` occurs in it."""
    before, found, after = line.partition(sample.encode("ascii"))
    if not found or sample.encode("ascii") in after:
        return None
    return before, after


@dataclass(frozen=True, slots=True)
class WireMessage:
    """A digest ready for a transport: its bytes, its Message-ID, its Subject line."""

    data: bytes
    message_id: str
    subject: str


class MessageWriter:
    """Writes digest messages for one :class:`MessageOptions` (build once per process)."""

    def __init__(self, options: MessageOptions) -> None:
        self.options = options
        self._domain = _mail_domain(options.mail_from)
        self._from_error: Exception | None = None
        self._from = b""
        try:
            self._from = reference_header("From", options.mail_from)
        except (ValueError, IndexError, HeaderParseError) as exc:  # raised per message
            self._from_error = exc
        self._list_id = reference_header("List-Id", single_line(options.list_id))
        self._tail = b"".join(
            reference_header(name, value)
            for name, value in (
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ("Precedence", "bulk"),
                ("MIME-Version", "1.0"),
            )
        )
        # Message-ID and Content-Type differ between digests only by the key's hex digest.
        sample = hashlib.sha256(b"sample").hexdigest()
        self._message_id = _around_sample(
            reference_header("Message-ID", message_id_for("sample", self._domain)), sample[:32]
        )
        self._content_type = _around_sample(_content_type(f"==digest-{sample[:24]}=="), sample[:24])
        self._text_head = _part_head("plain")
        self._html_head = _part_head("html")
        self._dkim = signer_for(options)

    def write(self, view: DigestView, rendered: RenderedEmail, *, sent_at: datetime) -> WireMessage:
        """The message for ``view`` (``sent_at`` is the Date; naive means UTC)."""
        digest = hashlib.sha256(view.key.encode()).hexdigest()
        message_id = message_id_for(view.key, self._domain)
        subject = single_line(rendered.subject)
        boundary = f"==digest-{digest[:24]}=="
        headers = [
            self._from,
            self._to(view),
            _plain("Subject", subject) or _folded_subject(subject),
            _date_header(sent_at, sent_at.utcoffset()),
            self._message_id_line(message_id, digest),
            self._list_id,
            self._list_unsubscribe(view),
            self._tail,
            self._content_type_line(boundary, digest),
        ]
        delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
        body = [
            _CRLF,  # the blank line after the headers
            delimiter[2:],
            self._text_head,
            qp_body(rendered.text),
            delimiter,
            self._html_head,
            qp_body(rendered.html_utf8 or rendered.html),
            delimiter[:-2],
            b"--\r\n",
        ]
        if self._dkim is not None:
            headers.append(self._signature(b"".join(headers + body)))
        data = b"".join(headers + body)
        return WireMessage(data=data, message_id=message_id, subject=subject)

    def _to(self, view: DigestView) -> bytes:
        if self._from_error is not None:
            raise RenderError(f"bad address for digest {view.key}: {self._from_error}")
        name = single_line(view.subscriber_name or "")
        address = view.subscriber_email.strip()
        if _SIMPLE_ADDRESS.fullmatch(address):
            # headerregistry.Address.__str__: a name with specials becomes a quoted-string
            shown = name if _SPECIALS.isdisjoint(name) else quote_string(name)
            line = _plain("To", f"{shown} <{address}>" if name else address)
            if line is not None:
                return line
        try:
            return reference_header("To", Address(display_name=name, addr_spec=address))
        except (ValueError, IndexError, HeaderParseError) as exc:  # headerregistry's errors
            raise RenderError(f"bad address for digest {view.key}: {exc}") from exc

    def _message_id_line(self, message_id: str, digest: str) -> bytes:
        if self._message_id is None:
            return reference_header("Message-ID", message_id)
        before, after = self._message_id
        return before + digest[:32].encode("ascii") + after

    def _content_type_line(self, boundary: str, digest: str) -> bytes:
        if self._content_type is None:
            return _content_type(boundary)
        before, after = self._content_type
        return before + digest[:24].encode("ascii") + after

    def _list_unsubscribe(self, view: DigestView) -> bytes:
        value = list_unsubscribe(view.links.unsubscribe_url, self.options.unsubscribe_mailto)
        if "=?" in value:  # the reference would decode it as an RFC 2047 word first
            return reference_header("List-Unsubscribe", value)
        return b"List-Unsubscribe: " + value.replace(", ", ",\r\n ").encode("ascii") + _CRLF

    def _signature(self, unsigned: bytes) -> bytes:
        """The DKIM-Signature line ``add_dkim_signature`` adds after the other headers."""
        assert self._dkim is not None
        name, _, value = self._dkim.signature(unsigned).decode("ascii").partition(":")
        value = " ".join(value.split())
        return _plain(name, value) or reference_header(name, value)


def _content_type(boundary: str) -> bytes:
    """The top-level Content-Type line, made as ``build_message`` makes it."""
    message = EmailMessage(policy=MAIL_POLICY)
    message.make_alternative(boundary=boundary)
    return reference_header("Content-Type", message["Content-Type"])


def _part_head(subtype: str) -> bytes:
    """A text part's header block and blank line, as the reference writes them."""
    raw = _text_part("", subtype).as_bytes(policy=WIRE_POLICY)
    head, found, _ = raw.partition(b"\r\n\r\n")
    assert found, "a serialized MIME part always has a blank line"
    return head + b"\r\n\r\n"


@functools.lru_cache(maxsize=8)
def message_writer(options: MessageOptions) -> MessageWriter:
    """The writer for ``options``, built once per process (the DKIM key is read then)."""
    return MessageWriter(options)


def clear_caches() -> None:
    """Forget remembered writers and header lines (benchmarks start cold with it)."""
    message_writer.cache_clear()
    _folded_subject.cache_clear()
    _date_header.cache_clear()


def wire_message(
    view: DigestView, rendered: RenderedEmail, *, options: MessageOptions, sent_at: datetime
) -> WireMessage:
    """The bytes ``message_bytes(add_dkim_signature(build_message(…)))`` would give."""
    return message_writer(options).write(view, rendered, sent_at=sent_at)
