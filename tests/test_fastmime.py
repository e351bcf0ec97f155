"""wire_message: the same bytes as build_message + add_dkim_signature + message_bytes.

The reference builder is the specification. Every case renders a view, builds both, and
compares the bytes; the fast bytes are also checked against the mail rules of
tests/test_mail.py (headers, structure, 7-bit, line lengths, no injected headers).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from dkim_keys import dkim_key_file  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from render_fixtures import BARE, DELIVERED, HOSTILE, LINKS, NORMAL, digest_view, long_item

from digest.delivery.fastmime import (
    MessageWriter,
    WireMessage,
    _plain,
    reference_header,
    wire_message,
)
from digest.delivery.message import MessageOptions, add_dkim_signature, build_message
from digest.delivery.wire import message_bytes
from digest.errors import RenderError
from digest.render.display import single_line
from digest.render.email import EmailRenderer, RenderedEmail
from digest.render.views import DigestView

OPTIONS = MessageOptions(
    mail_from="Paper digest <digest@example.org>",
    list_id="Paper digest <digest.example.org>",
    unsubscribe_mailto="unsubscribe@example.org",
)
RENDERER = EmailRenderer()
LONG_UNSUBSCRIBE = "https://digest.example.org/unsubscribe/" + "A1b2-C3d4_" * 60  # 639 chars
REQUIRED = ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe")


def reference(
    view: DigestView, rendered: RenderedEmail, options: MessageOptions, sent_at: datetime
) -> tuple[bytes, EmailMessage]:
    message = build_message(view, rendered, options=options, sent_at=sent_at)
    return message_bytes(add_dkim_signature(message, options)), message


def check_mail(raw: bytes, view: DigestView, rendered: RenderedEmail) -> None:
    """The rules of tests/test_mail.py, on wire bytes."""
    raw.decode("ascii")  # 7-bit: non-ASCII only as RFC 2047 words and quoted-printable
    assert raw.count(b"\r\n") == raw.count(b"\n")  # CRLF throughout
    head, body = raw.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # RFC 2045 QP limit
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    names = [name.lower() for name in parsed]
    for name in (*REQUIRED, "List-Unsubscribe-Post", "MIME-Version"):
        assert names.count(name.lower()) == 1, name
    assert parsed["Bcc"] is None and parsed["Cc"] is None
    assert parsed["To"].addresses[0].addr_spec == view.subscriber_email.strip()
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["List-Unsubscribe"].startswith(f"<{view.links.unsubscribe_url}>")
    unsubscribe = head.split(b"\r\nList-Unsubscribe:", 1)[1].split(b"\r\nList-Unsubscribe-Post")[0]
    assert b"=?" not in unsubscribe  # verbatim, never RFC 2047-encoded
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part, expected in zip(parts, (rendered.text, rendered.html), strict=True):
        assert part.get_content_charset() == "utf-8"
        assert part["MIME-Version"] is None
        decoded = part.get_content().replace("\r\n", "\n").rstrip("\n")
        assert decoded == "\n".join(expected.splitlines()).rstrip("\n")


def same_bytes(
    view: DigestView,
    *,
    options: MessageOptions = OPTIONS,
    sent_at: datetime = DELIVERED,
    renderer: EmailRenderer = RENDERER,
    check: bool = True,
) -> WireMessage:
    rendered = renderer.render(view)
    expected, message = reference(view, rendered, options, sent_at)
    fast = wire_message(view, rendered, options=options, sent_at=sent_at)
    assert fast.data == expected
    assert fast.message_id == str(message["Message-ID"])
    assert fast.subject == single_line(rendered.subject)
    if check:
        check_mail(fast.data, view, rendered)
    return fast


def test_golden_view_and_empty_digest() -> None:
    for view in (digest_view(), digest_view(())):
        same_bytes(view)
    same_bytes(replace(digest_view(()), period_label=""))  # a plain-ASCII Subject


HOSTILE_TITLES = [
    "Great paper\r\nBcc: victim@example.com\r\n\r\n<h1>body",
    "Subject: forged\nTo: x@y.z",
    '<script>alert("x")</script> & <b>bold</b> "quotes"',
    "controls \x00\x07\x1b\x7f\x85 and \u2028\u2029 separators",
    "Emoji 😀🧪🔬 everywhere 👩🏽‍🔬",
    "نموذج لغوي كبير للترجمة — עברית mixed RTL",
    "=?utf-8?q?Bcc=3A_victim=40example.com?= looks encoded",
    "= signs == everywhere ===",
    "trailing spaces   ",
    "Long " * 2000,  # a 10 KB title
    "x" * 10_000,  # one 10 KB word
]


@pytest.mark.parametrize("title", HOSTILE_TITLES, ids=range(len(HOSTILE_TITLES)))
def test_hostile_titles(title: str) -> None:
    evil = replace(HOSTILE, title=title)
    same_bytes(digest_view((evil, NORMAL)))
    same_bytes(digest_view((NORMAL, replace(BARE, title=title, abstract=title))))


NAMES = [
    None,
    "",
    "Ada Lovelace-Byron",
    "Lovelace, Ada (Countess)",
    'A "quoted" \\ name; with: specials.',
    "Zoë Ångström",
    "李雷",
    "Zoë Ångström\r\nBcc: evil@example.com",
    "=?utf-8?q?Ada?=",
    "Ada " * 300,  # the To line would pass 998 characters
    "مريم",
]


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_display_names(name: str | None) -> None:
    same_bytes(replace(digest_view(), subscriber_name=name))


@pytest.mark.parametrize(
    "address",
    [
        "ada+digest@example.org",
        "first.last@mail.sub.example.org",
        "  padded@example.org  ",
        '"a b"@example.org',
        "o'hara@example.org",
        "ada@bücher.example",
    ],
)
def test_recipient_addresses(address: str) -> None:
    same_bytes(replace(digest_view(), subscriber_email=address))


def test_address_longer_than_a_line() -> None:
    # No such address exists (RFC 5321 §4.5.3.1: 256 octets a path), and neither builder can
    # fold one word: both write the same over-long To line.
    fast = same_bytes(
        replace(digest_view(), subscriber_email="x" * 990 + "@example.org"), check=False
    )
    assert max(len(line) for line in fast.data.split(b"\r\n")) > 998


def test_bad_recipient_fails_like_the_reference() -> None:
    view = replace(digest_view(), subscriber_email="not an address")
    rendered = RENDERER.render(view)
    with pytest.raises(RenderError, match="bad address") as expected:
        build_message(view, rendered, options=OPTIONS, sent_at=DELIVERED)
    with pytest.raises(RenderError, match="bad address") as fast:
        wire_message(view, rendered, options=OPTIONS, sent_at=DELIVERED)
    assert str(fast.value) == str(expected.value)


def test_bad_sender_fails_like_the_reference() -> None:
    options = replace(OPTIONS, mail_from="not an address <")
    view = digest_view()
    rendered = RENDERER.render(view)
    with pytest.raises(RenderError) as expected:
        build_message(view, rendered, options=options, sent_at=DELIVERED)
    with pytest.raises(RenderError) as fast:
        wire_message(view, rendered, options=options, sent_at=DELIVERED)
    assert str(fast.value) == str(expected.value)


@pytest.mark.parametrize(
    "site_name",
    ["Paper digest", "Revue d'articles — édition spéciale", "Digest " * 60, "Zeitschrift für KI"],
)
def test_subjects_long_and_non_ascii(site_name: str) -> None:
    renderer = EmailRenderer(site_name=site_name)
    same_bytes(digest_view(), renderer=renderer)
    same_bytes(digest_view(()), renderer=renderer)
    same_bytes(replace(digest_view(()), period_label=""), renderer=renderer)
    same_bytes(digest_view(tuple(long_item(n) for n in range(20))), renderer=renderer)


@pytest.mark.parametrize("url", [LONG_UNSUBSCRIBE, LINKS.site_url])
@pytest.mark.parametrize("mailto", [None, "unsubscribe@example.org", "mailto:u@example.org"])
def test_unsubscribe_urls_and_mailto(url: str, mailto: str | None) -> None:
    view = replace(digest_view(), links=replace(LINKS, unsubscribe_url=url))
    fast = same_bytes(view, options=replace(OPTIONS, unsubscribe_mailto=mailto))
    if mailto and url == LONG_UNSUBSCRIBE:  # folded only at the comma, never encoded
        assert f"\r\nList-Unsubscribe: <{url}>,\r\n <mailto:".encode() in fast.data


def test_unsubscribe_url_that_looks_encoded() -> None:
    # The reference decodes "=?…?=" in the URL as an RFC 2047 word and writes ".../x"
    # (a defect of the reference, kept here byte for byte; our tokens never contain "=?").
    url = "https://digest.example.org/unsubscribe/=?utf-8?q?x?="
    view = replace(digest_view(), links=replace(LINKS, unsubscribe_url=url))
    fast = same_bytes(view, check=False)
    assert b"\r\nList-Unsubscribe: <https://digest.example.org/unsubscribe/x>," in fast.data


def test_unsafe_unsubscribe_url_fails_like_the_reference() -> None:
    view = replace(digest_view(), links=replace(LINKS, unsubscribe_url=LINKS.site_url + ">"))
    rendered = RENDERER.render(view)
    with pytest.raises(RenderError, match="unsafe URI"):
        wire_message(view, rendered, options=OPTIONS, sent_at=DELIVERED)


@pytest.mark.parametrize(
    "options",
    [
        replace(OPTIONS, mail_from="digest@example.org"),
        replace(OPTIONS, mail_from="Zeitschrift für Papers <digest@example.org>"),
        replace(OPTIONS, mail_from='"Digest, The" <digest@example.org>'),
        replace(OPTIONS, list_id="Revue d'articles — Paper digest <digest.example.org>"),
        replace(OPTIONS, list_id="Digest\r\n<digest.example.org>"),
    ],
    ids=range(5),
)
def test_sender_and_list_settings(options: MessageOptions) -> None:
    same_bytes(digest_view(), options=options)
    same_bytes(replace(digest_view(), key="7:daily:2026-11-24"), options=options)


def test_sender_domains_the_reference_cannot_fold() -> None:
    view, rendered = digest_view(), RENDERER.render(digest_view())
    # A Message-ID cannot carry a non-ASCII domain: both builders refuse alike.
    options = replace(OPTIONS, mail_from="Digest <digest@bücher.example>")
    with pytest.raises(UnicodeEncodeError):
        reference(view, rendered, options, DELIVERED)
    with pytest.raises(UnicodeEncodeError):
        wire_message(view, rendered, options=options, sent_at=DELIVERED)
    # A domain too long for one line: both write the same unfoldable lines.
    long_domain = "sub." * 240 + "example.org"
    options = replace(OPTIONS, mail_from=f"Digest <digest@{long_domain}>")
    fast = same_bytes(view, options=options, check=False)
    assert b"\r\nMessage-ID: <digest." in fast.data


def test_dates_in_any_zone_and_naive() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    same_bytes(digest_view(), sent_at=datetime(2026, 11, 23, 8, 0))  # naive is UTC
    # Equal instants, different zones: each written with its own wall time and offset.
    pacific = timezone(timedelta(hours=-8))
    for moment in (
        DELIVERED,
        DELIVERED.astimezone(india),
        DELIVERED.astimezone(pacific),
        DELIVERED,
    ):
        fast = same_bytes(digest_view(), sent_at=moment)
        assert f"\r\nDate: {moment.strftime('%a, %d %b %Y %H:%M:%S %z')}\r\n".encode() in fast.data


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    return dkim_key_file(tmp_path_factory.mktemp("dkim") / "key.pem", bits=1024)  # dkimpy's minimum


def _timestamp(data: bytes) -> bytes:
    match = re.search(rb"\bt=(\d+);", data)
    assert match is not None
    return match.group(1)


def test_dkim_signed_bytes_equal_the_reference_and_verify(dkim_key: tuple[Path, bytes]) -> None:
    path, record = dkim_key
    options = replace(
        OPTIONS, dkim_selector="sel1", dkim_domain="example.org", dkim_private_key=path
    )
    view = digest_view()
    rendered = RENDERER.render(view)
    for _ in range(5):  # the signature carries t= (seconds): retry across a second boundary
        expected, _message = reference(view, rendered, options, DELIVERED)
        fast = wire_message(view, rendered, options=options, sent_at=DELIVERED)
        if _timestamp(fast.data) == _timestamp(expected):
            break
    assert fast.data == expected
    assert fast.data.count(b"DKIM-Signature:") == 1
    check_mail(fast.data, view, rendered)

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sel1._domainkey.example.org."
        return record

    assert dkim.verify(fast.data, dnsfunc=dns)
    tampered = fast.data.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Two-Click")
    assert not dkim.verify(tampered, dnsfunc=dns)


LINE = st.text(st.characters(exclude_categories=("Cs",)), max_size=120)
WORDS = st.lists(
    st.sampled_from(["α", "=", "=?", "?=", " ", ".", "\r\n", "😀", "<b>", "&", "—", "x" * 80]),
    max_size=12,
).map("".join)
TEXTS = st.one_of(LINE, WORDS)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    title=TEXTS,
    abstract=st.one_of(TEXTS, st.text(max_size=2000)),
    authors=st.lists(TEXTS, max_size=6),
    reason=TEXTS,
    name=st.one_of(st.none(), TEXTS),
    period=TEXTS,
    count=st.integers(0, 4),
)
def test_random_text_gives_the_same_bytes(
    title: str,
    abstract: str,
    authors: list[str],
    reason: str,
    name: str | None,
    period: str,
    count: int,
) -> None:
    item = replace(NORMAL, title=title, abstract=abstract, authors=tuple(authors), reason=reason)
    items = (item, HOSTILE, BARE, NORMAL)[:count]
    view = replace(digest_view(items), subscriber_name=name, period_label=period)
    same_bytes(view)


ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=1100)
ATEXT = st.text(st.sampled_from("abcXYZ019!#$%&'*+/=?^_`{|}~-"), min_size=1, max_size=20)


@settings(max_examples=400, deadline=None)
@given(ASCII)
def test_plain_ascii_subjects_equal_the_reference(text: str) -> None:
    value = single_line(text)
    line = _plain("Subject", value)
    if line is not None:  # otherwise wire_message asks the reference folder
        assert line == reference_header("Subject", value)


@settings(max_examples=400, deadline=None)
@given(
    name=st.one_of(ASCII, st.sampled_from(['"', "\\", "()", "a.b", "x, y", "<z>", "=?a?="])),
    local=st.lists(ATEXT, min_size=1, max_size=3).map(".".join),
    domain=st.lists(ATEXT, min_size=1, max_size=3).map(".".join),
)
def test_plain_ascii_recipients_equal_the_reference(name: str, local: str, domain: str) -> None:
    view = replace(digest_view(), subscriber_name=name, subscriber_email=f"{local}@{domain}")
    expected = reference_header(
        "To", Address(display_name=single_line(name), addr_spec=f"{local}@{domain}")
    )
    assert MessageWriter(OPTIONS)._to(view) == expected
