"""Build the digest email message with every header bulk senders need (see delivery.md).

``build_message`` turns a rendered digest into an :class:`~email.message.EmailMessage`:
From, To, Subject, Date, a Message-ID derived from the digest key, List-Id,
List-Unsubscribe (+ RFC 8058 one-click) and ``multipart/alternative`` with text/plain first
and text/html last. ``sign_message`` adds an optional DKIM signature
(:mod:`~digest.delivery.dkim_signer`).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from digest.delivery.dkim_signer import DkimSigner
from digest.delivery.wire import message_bytes
from digest.errors import ConfigError, RenderError
from digest.render.display import as_utc, single_line
from digest.render.email import RenderedEmail
from digest.render.views import DigestView

if TYPE_CHECKING:
    from digest.config.settings import Settings

# Headers a DKIM signature must cover: the defaults omit List-Unsubscribe-Post (delivery.md),
# and a receiver only honours one-click when both List-Unsubscribe headers are signed.
DKIM_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)
_MAX_HEADER_LINE = 998  # RFC 5322 §2.1.1 hard limit


class _VerbatimUrlHeader(UnstructuredHeader, BaseHeader):
    """A header of ``<URI>, <URI>`` (RFC 2369) that is never RFC 2047-encoded.

    The stock folder "encodes anyway so it can wrap" any token longer than the line, which
    turns a long unsubscribe URL into ``=?utf-8?q?...?=`` garbage that no client follows.
    Here the value is folded only at the commas between URIs, which RFC 2369 §2 allows.
    """

    max_count = 1

    def fold(self, *, policy: Any) -> str:
        linesep: str = policy.linesep
        return f"{self.name}: " + f",{linesep} ".join(str(self).split(", ")) + linesep


def _header_registry() -> HeaderRegistry:
    registry = HeaderRegistry()
    registry.map_to_type("list-unsubscribe", _VerbatimUrlHeader)
    return registry


# policy.SMTP (CRLF, 78-column folding so encoded words stay within RFC 2047's 75 chars)
# with List-Unsubscribe exempt from encoding. Body parts are quoted-printable, 7-bit clean.
MAIL_POLICY = policy.SMTP.clone(header_factory=_header_registry())


@dataclass(frozen=True, slots=True)
class MessageOptions:
    """The settings a digest message is built and signed with."""

    mail_from: str
    list_id: str
    unsubscribe_mailto: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MessageOptions:
        return cls(
            mail_from=settings.mail_from,
            list_id=settings.resolved_list_id,
            unsubscribe_mailto=settings.unsubscribe_mailto,
            dkim_selector=settings.dkim_selector,
            dkim_domain=settings.dkim_domain,
            dkim_private_key=settings.dkim_private_key,
        )

    @property
    def signs(self) -> bool:
        """Whether messages are DKIM-signed: selector, domain and private key are all set."""
        return bool(self.dkim_selector and self.dkim_domain and self.dkim_private_key)


def message_id_for(key: str, domain: str) -> str:
    """Deterministic Message-ID for a digest: a retried send carries the same id."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<digest.{digest}@{domain}>"


def _mail_domain(mail_from: str) -> str:
    address = parseaddr(mail_from)[1]
    return address.rpartition("@")[2].strip().lower() or "localhost"


def _angle_uri(uri: str) -> str:
    # A URI that could close the bracket or break the line would forge header content.
    if not uri or any(c in uri for c in "<>, \t\r\n") or not uri.isascii():
        raise RenderError(f"unsafe URI for List-Unsubscribe: {uri!r}")
    return f"<{uri}>"


def list_unsubscribe(unsubscribe_url: str, mailto: str | None = None) -> str:
    """The List-Unsubscribe value: the HTTPS one-click URL, then an optional mailto."""
    uris = [_angle_uri(unsubscribe_url)]
    if mailto:
        target = mailto.removeprefix("mailto:")
        uris.append(_angle_uri(f"mailto:{target}"))
    value = ", ".join(uris)
    if len("List-Unsubscribe: ") + len(value) > _MAX_HEADER_LINE:
        raise RenderError("List-Unsubscribe URL is too long for one header line")
    return value


# The content manager wraps quoted-printable at the policy's line length: RFC 2045 §6.7
# allows 76 characters per encoded line.
_PART_POLICY = policy.SMTP.clone(max_line_length=76)


def _text_part(content: str, subtype: str) -> MIMEPart:
    part = MIMEPart(policy=_PART_POLICY)
    part.set_content(content, subtype=subtype, charset="utf-8", cte="quoted-printable")
    return part


def build_message(
    view: DigestView, rendered: RenderedEmail, *, options: MessageOptions, sent_at: datetime
) -> EmailMessage:
    """The complete digest message (``sent_at`` is the Date; naive means UTC)."""
    message = EmailMessage(policy=MAIL_POLICY)
    try:
        message["From"] = options.mail_from
        message["To"] = Address(
            display_name=single_line(view.subscriber_name or ""),
            addr_spec=view.subscriber_email.strip(),
        )
    except (ValueError, IndexError, HeaderParseError) as exc:  # headerregistry's parse errors
        raise RenderError(f"bad address for digest {view.key}: {exc}") from exc
    # single_line: a CR/LF in a paper title must never start a new header.
    message["Subject"] = single_line(rendered.subject)
    message["Date"] = format_datetime(as_utc(sent_at))
    message["Message-ID"] = message_id_for(view.key, _mail_domain(options.mail_from))
    message["List-Id"] = single_line(options.list_id)
    message["List-Unsubscribe"] = list_unsubscribe(
        view.links.unsubscribe_url, options.unsubscribe_mailto
    )
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058 §3.1
    # Not a standard (RFC 2076) but what vacation responders look at (RFC 3834 §2): keeps
    # out-of-office replies off the bounce address. Gmail's sender rules neither need nor
    # penalise it.
    message["Precedence"] = "bulk"
    message["MIME-Version"] = "1.0"
    # A boundary from the key keeps the bytes reproducible; "==" never occurs in QP bodies.
    boundary = f"==digest-{hashlib.sha256(view.key.encode()).hexdigest()[:24]}=="
    message.make_alternative(boundary=boundary)
    # RFC 2046 §5.1.4: alternatives in increasing faithfulness, so HTML goes last.
    # typeshed wants EmailMessage parts; MIMEPart is the same minus a MIME-Version header,
    # which belongs on the top level only.
    message.attach(_text_part(rendered.text, "plain"))  # type: ignore[arg-type]  # MIMEPart is EmailMessage minus MIME-Version
    message.attach(_text_part(rendered.html, "html"))  # type: ignore[arg-type]  # MIMEPart is EmailMessage minus MIME-Version
    return message


@functools.lru_cache(maxsize=8)
def dkim_signer(selector: str, domain: str, private_key: bytes) -> DkimSigner:
    """The signer covering ``DKIM_HEADERS``, built once per process (the key is parsed then)."""
    return DkimSigner(
        selector=selector, domain=domain, private_key=private_key, headers=DKIM_HEADERS
    )


def sign_message(
    message_bytes: bytes,
    *,
    selector: str,
    domain: str,
    private_key: bytes,
    timestamp: int | None = None,
) -> bytes:
    """Prepend a DKIM-Signature (rsa-sha256, relaxed/relaxed) covering ``DKIM_HEADERS``.

    ``timestamp`` is its ``t=`` (default: now). A bad key is a :class:`ConfigError`.
    """
    signer = dkim_signer(selector, domain, private_key)
    return signer.signature(message_bytes, timestamp=timestamp) + message_bytes


def signer_for(options: MessageOptions) -> DkimSigner | None:
    """The signer ``options`` configure (``None`` when DKIM is off); reads the key file."""
    if not (options.dkim_selector and options.dkim_domain and options.dkim_private_key):
        return None
    try:
        key = options.dkim_private_key.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read DKIM key {options.dkim_private_key}: {exc}") from exc
    return dkim_signer(options.dkim_selector, options.dkim_domain, key)


def sign_with_options(message_bytes: bytes, options: MessageOptions) -> bytes:
    """Sign when ``dkim_selector``, ``dkim_domain`` and ``dkim_private_key`` are all set."""
    signer = signer_for(options)
    if signer is None:
        return message_bytes
    return signer.signature(message_bytes) + message_bytes


def add_dkim_signature(message: EmailMessage, options: MessageOptions) -> EmailMessage:
    """Sign the message's wire bytes and add the DKIM-Signature header in place.

    The signature covers the exact bytes the transports send (``message_bytes``); adding a
    header leaves those bytes as they were, so the signature still verifies after sending.
    """
    if not options.signs:  # not configured: no need to serialize the message here
        return message
    wire = message_bytes(message)
    signed = sign_with_options(wire, options)
    if signed is wire:
        return message
    header = signed[: len(signed) - len(wire)].decode("ascii")
    name, _, value = header.partition(":")
    # Unfold: the wire policy writes it back on one line (under 998 characters).
    message[name] = " ".join(value.split())
    return message
