"""The digest message: headers bulk senders need, MIME structure, injection safety, DKIM."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import dkim
import pytest
from dkim_keys import dkim_key  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
from render_fixtures import DELIVERED, HOSTILE, LINKS, digest_view

from digest.config.settings import Settings
from digest.delivery.message import (
    DKIM_HEADERS,
    MessageOptions,
    build_message,
    list_unsubscribe,
    message_id_for,
    sign_message,
    sign_with_options,
)
from digest.errors import ConfigError, RenderError
from digest.render.email import EmailRenderer
from digest.render.views import DigestView

LONG_UNSUBSCRIBE = "https://digest.example.org/unsubscribe/" + "A1b2-C3d4_" * 20  # 239 chars


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        base_url="https://digest.example.org",
        mail_from="Paper digest <digest@example.org>",
        unsubscribe_mailto="unsubscribe@example.org",
        list_id="Paper digest <digest.example.org>",
    )


def build(renderer: EmailRenderer, settings: Settings, view: DigestView) -> EmailMessage:
    return build_message(
        view,
        renderer.render(view),
        options=MessageOptions.from_settings(settings),
        sent_at=DELIVERED,
    )


def reparse(message: EmailMessage) -> EmailMessage:
    parsed: object = message_from_bytes(bytes(message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def header_block(raw: bytes) -> str:
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii")


def unfolded(raw: bytes, name: str) -> str:
    """The header ``name`` with folding undone (RFC 5322 §2.2.3)."""
    headers = header_block(raw).replace("\r\n ", " ").replace("\r\n\t", "\t")
    return next(line for line in headers.split("\r\n") if line.startswith(f"{name}:"))


def test_required_headers(renderer: EmailRenderer, settings: Settings) -> None:
    message = build(renderer, settings, digest_view())
    parsed = reparse(message)
    assert parsed["From"] == "Paper digest <digest@example.org>"
    assert parsed["To"] == "Ada Lovelace-Byron <ada@example.org>"
    assert parsed["Subject"] == renderer.render(digest_view()).subject
    assert parsed["Date"] == "Mon, 23 Nov 2026 08:00:00 +0000"
    assert parsed["Message-ID"] == message_id_for("42:weekly:2026-W48", "example.org")
    assert parsed["List-Id"] == "Paper digest <digest.example.org>"
    assert parsed["List-Unsubscribe"] == (
        f"<{LINKS.unsubscribe_url}>, <mailto:unsubscribe@example.org>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed.get_all("MIME-Version") == ["1.0"]


def test_multipart_alternative_text_first_html_last(
    renderer: EmailRenderer, settings: Settings
) -> None:
    view = digest_view()
    rendered = renderer.render(view)
    parsed = reparse(build(renderer, settings, view))
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    # The wire format has CRLF line ends (kept by the parser) and set_content() ends a text
    # body with a newline.
    for part, expected in zip(parts, (rendered.text, rendered.html), strict=True):
        assert part.get_content().replace("\r\n", "\n").rstrip("\n") == expected.rstrip("\n")
    assert all(p["MIME-Version"] is None for p in parts)  # only on the top level


def test_serialized_message_is_7bit_with_short_lines(
    renderer: EmailRenderer, settings: Settings
) -> None:
    raw = bytes(build(renderer, settings, digest_view()))
    raw.decode("ascii")  # non-ASCII only as RFC 2047 words and quoted-printable
    lines = raw.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # RFC 2045 QP limit


def test_long_list_unsubscribe_is_not_encoded(renderer: EmailRenderer, settings: Settings) -> None:
    view = replace(digest_view(), links=replace(LINKS, unsubscribe_url=LONG_UNSUBSCRIBE))
    message = build(renderer, settings, view)
    # Whichever policy a transport serializes with, the URL survives verbatim.
    for raw in (bytes(message), message.as_bytes(policy=policy.SMTP)):
        headers = header_block(raw)
        assert f"\r\nList-Unsubscribe: <{LONG_UNSUBSCRIBE}>,\r\n <mailto:" in headers
        assert "=?utf-8?" not in headers.split("List-Unsubscribe:", 1)[1].split("\r\nList-")[0]
    assert reparse(message)["List-Unsubscribe"].startswith(f"<{LONG_UNSUBSCRIBE}>")


def test_non_ascii_recipient_name_is_encoded(renderer: EmailRenderer, settings: Settings) -> None:
    view = replace(digest_view(), subscriber_name="Zoë Ångström\r\nBcc: evil@example.com")
    message = build(renderer, settings, view)
    to_line = unfolded(bytes(message), "To")
    assert "=?utf-8?" in to_line
    assert to_line.endswith("<ada@example.org>")
    parsed = reparse(message)
    assert parsed["To"].addresses[0].display_name == "Zoë Ångström Bcc: evil@example.com"
    assert parsed["Bcc"] is None


def test_hostile_titles_never_inject_headers(renderer: EmailRenderer, settings: Settings) -> None:
    evil = replace(HOSTILE, title="Great paper\r\nBcc: victim@example.com\r\n\r\n<h1>body")
    view = digest_view((evil,))
    message = build(renderer, settings, view)
    parsed = reparse(message)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == (
        "Paper digest: 1 new paper — Great paper Bcc: victim@example.com <h1>body"
    )
    names = [name.lower() for name in parsed]
    assert names.count("subject") == 1
    assert parsed.get_content_type() == "multipart/alternative"
    html = parsed.get_body(("html",))
    assert html is not None
    assert "<h1>body" not in html.get_content()


def test_message_id_is_deterministic() -> None:
    first = message_id_for("42:weekly:2026-W48", "example.org")
    assert first == message_id_for("42:weekly:2026-W48", "example.org")
    assert first != message_id_for("42:weekly:2026-W49", "example.org")
    assert re.fullmatch(r"<digest\.[0-9a-f]{32}@example\.org>", first)


def test_same_digest_gives_same_bytes(renderer: EmailRenderer, settings: Settings) -> None:
    assert bytes(build(renderer, settings, digest_view())) == bytes(
        build(renderer, settings, digest_view())
    )


def test_naive_sent_at_is_utc(renderer: EmailRenderer, settings: Settings) -> None:
    view = digest_view()
    naive = datetime(2026, 11, 23, 8, 0)
    message = build_message(
        view, renderer.render(view), options=MessageOptions.from_settings(settings), sent_at=naive
    )
    assert message["Date"] == "Mon, 23 Nov 2026 08:00:00 +0000"


def test_list_unsubscribe_value() -> None:
    url = LINKS.unsubscribe_url
    assert list_unsubscribe(url) == f"<{url}>"
    assert list_unsubscribe(url, "mailto:u@example.org") == f"<{url}>, <mailto:u@example.org>"
    assert list_unsubscribe(url, "u@example.org") == f"<{url}>, <mailto:u@example.org>"
    for bad in (url + ">", url + "\r\nBcc: x@y.z", url + " x", "", url + "é"):
        with pytest.raises(RenderError):
            list_unsubscribe(bad)
    with pytest.raises(RenderError, match="too long"):
        list_unsubscribe("https://x.org/" + "a" * 1000)


def test_bad_recipient_is_a_render_error(renderer: EmailRenderer, settings: Settings) -> None:
    view = replace(digest_view(), subscriber_email="not an address")
    with pytest.raises(RenderError, match="bad address"):
        build(renderer, settings, view)


@pytest.fixture(scope="module")
def rsa_key() -> tuple[bytes, bytes]:
    return dkim_key(1024)  # dkimpy's minimum


def dns_for(record: bytes) -> Callable[..., bytes]:
    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sel1._domainkey.example.org."
        return record

    return dnsfunc


def test_dkim_signature_verifies_and_covers_one_click(
    renderer: EmailRenderer, settings: Settings, rsa_key: tuple[bytes, bytes]
) -> None:
    private, record = rsa_key
    raw = bytes(build(renderer, settings, digest_view()))
    signed = sign_message(raw, selector="sel1", domain="example.org", private_key=private)
    assert signed.endswith(raw)
    assert dkim.verify(signed, dnsfunc=dns_for(record))
    signature = message_from_bytes(signed, policy=policy.default)["DKIM-Signature"]
    signed_headers = re.search(r"h=([^;]*);", str(signature).replace(" ", ""))
    assert signed_headers is not None
    covered = signed_headers.group(1).split(":")
    for name in ("list-unsubscribe", "list-unsubscribe-post", "list-id", "from", "subject"):
        assert name in covered
    assert len(covered) == len(DKIM_HEADERS)
    tampered = signed.replace(b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Two-Click")
    assert not dkim.verify(tampered, dnsfunc=dns_for(record))


def test_sign_with_options(
    renderer: EmailRenderer, settings: Settings, rsa_key: tuple[bytes, bytes], tmp_path: Path
) -> None:
    raw = bytes(build(renderer, settings, digest_view()))
    assert (
        sign_with_options(raw, MessageOptions.from_settings(settings)) == raw
    )  # DKIM not configured: unchanged
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(rsa_key[0])
    configured = settings.model_copy(
        update={"dkim_selector": "sel1", "dkim_domain": "example.org", "dkim_private_key": key_file}
    )
    signed = sign_with_options(raw, MessageOptions.from_settings(configured))
    assert dkim.verify(signed, dnsfunc=dns_for(rsa_key[1]))
    missing = settings.model_copy(
        update={
            "dkim_selector": "s",
            "dkim_domain": "example.org",
            "dkim_private_key": tmp_path / "absent.pem",
        }
    )
    with pytest.raises(ConfigError, match="cannot read DKIM key"):
        sign_with_options(raw, MessageOptions.from_settings(missing))


def test_bad_dkim_key_is_a_config_error(renderer: EmailRenderer, settings: Settings) -> None:
    raw = bytes(build(renderer, settings, digest_view()))
    with pytest.raises(ConfigError, match="DKIM"):
        sign_message(raw, selector="s", domain="example.org", private_key=b"not a key")
