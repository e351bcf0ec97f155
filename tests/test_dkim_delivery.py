"""A DKIM-signed digest verifies after it went through a real transport."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dkim_keys import dkim_key_file  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
from render_fixtures import digest_view  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package

from digest.config.settings import Settings
from digest.delivery import OutboxTransport
from digest.delivery.message import MessageOptions, add_dkim_signature, build_message
from digest.render.email import EmailRenderer

dkim = pytest.importorskip("dkim")


def test_signed_message_verifies_after_outbox(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    key_path, record = dkim_key_file(tmp_path / "dkim.pem")
    settings = make_settings(
        dkim_selector="mail", dkim_domain="digest.example.org", dkim_private_key=key_path
    )
    view = digest_view()
    message = build_message(
        view,
        EmailRenderer().render(view),
        options=MessageOptions.from_settings(settings),
        sent_at=datetime.now(UTC),
    )
    add_dkim_signature(message, MessageOptions.from_settings(settings))
    assert message["DKIM-Signature"]
    transport = OutboxTransport(tmp_path / "outbox")
    with transport:
        transport.send(message, envelope_from="b@digest.example.org", recipient="a@example.org")
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    raw = eml.read_bytes()

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.digest.example.org."
        return record

    assert dkim.verify(raw, dnsfunc=dns)
    signature = raw.split(b"DKIM-Signature:", 1)[1].split(b"\r\n", 1)[0].lower()
    assert b"list-unsubscribe-post" in signature
    tampered = raw.replace(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        b"List-Unsubscribe-Post: List-Unsubscribe=Two-Click",
    )
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_unsigned_without_settings(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    view = digest_view()
    message = build_message(
        view,
        EmailRenderer().render(view),
        options=MessageOptions.from_settings(settings),
        sent_at=datetime.now(UTC),
    )
    assert (
        add_dkim_signature(message, MessageOptions.from_settings(settings))["DKIM-Signature"]
        is None
    )
