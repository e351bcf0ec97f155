"""Transports send prebuilt wire bytes (wire_message) as they send EmailMessage objects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import dkim
import pytest
from dkim_keys import dkim_key_file  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
from render_fixtures import DELIVERED, digest_view

from digest.delivery import OutboxTransport, SmtpTransport, eml_name
from digest.delivery.fastmime import WireMessage, wire_message
from digest.delivery.message import MessageOptions, add_dkim_signature, build_message
from digest.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError
from digest.render.email import EmailRenderer
from digest.testing.smtp import SmtpSink

BOUNCE = "bounce@example.org"
READER = "ada@example.org"
OPTIONS = MessageOptions(
    mail_from="Paper digest <digest@example.org>",
    list_id="Paper digest <digest.example.org>",
    unsubscribe_mailto="unsubscribe@example.org",
)


def wire(options: MessageOptions = OPTIONS, key: str = "42:weekly:2026-W48") -> WireMessage:
    view = replace(digest_view(), key=key)
    return wire_message(view, EmailRenderer().render(view), options=options, sent_at=DELIVERED)


def send_bytes(transport: OutboxTransport | SmtpTransport, m: WireMessage) -> None:
    transport.send_bytes(m.data, envelope_from=BOUNCE, recipient=READER, message_id=m.message_id)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


def smtp(sink: SmtpSink, retries: int = 3) -> SmtpTransport:
    return SmtpTransport(host=sink.host, port=sink.port, retries=retries, retry_wait=0, timeout=2.0)


def test_outbox_writes_the_same_file_as_send(tmp_path: Path) -> None:
    view = digest_view()
    message = build_message(view, EmailRenderer().render(view), options=OPTIONS, sent_at=DELIVERED)
    with OutboxTransport(tmp_path / "send") as transport:
        transport.send(message, envelope_from=BOUNCE, recipient=READER)
    fast = wire()
    with OutboxTransport(tmp_path / "bytes") as transport:
        send_bytes(transport, fast)
        send_bytes(transport, fast)  # a retry replaces the file
    [by_send] = (tmp_path / "send").iterdir()
    [by_bytes] = (tmp_path / "bytes").iterdir()
    assert by_bytes.name == by_send.name == eml_name(fast.message_id)
    assert by_bytes.read_bytes() == by_send.read_bytes() == fast.data


def test_outbox_refuses_an_empty_message_id_and_reports_unwritable_dirs(tmp_path: Path) -> None:
    with OutboxTransport(tmp_path) as transport, pytest.raises(ValueError, match="Message-ID"):
        transport.send_bytes(b"x\r\n", envelope_from=BOUNCE, recipient=READER, message_id=" ")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    outbox = OutboxTransport(blocker / "outbox")
    with pytest.raises(DeliveryError, match="cannot create outbox"):
        send_bytes(outbox, wire())
    assert list(tmp_path.iterdir()) == [blocker]


def test_smtp_delivers_the_exact_bytes(sink: SmtpSink) -> None:
    fast = wire()
    with smtp(sink) as transport:
        send_bytes(transport, fast)
        send_bytes(transport, fast)
    assert [m.raw for m in sink.messages] == [fast.data, fast.data]
    assert sink.messages[0].envelope_from == BOUNCE
    assert sink.messages[0].rcpt_tos == (READER,)
    assert sink.connections == 1


def test_smtp_send_bytes_keeps_retries_and_error_translation(sink: SmtpSink) -> None:
    sink.fail_next(451, stage="rcpt", times=2)
    with smtp(sink, retries=2) as transport:
        send_bytes(transport, wire())
    assert len(sink.messages) == 1
    sink.fail_next(550, stage="rcpt")
    with smtp(sink, retries=2) as transport, pytest.raises(PermanentDeliveryError) as caught:
        send_bytes(transport, wire())
    assert caught.value.code == 550
    sink.fail_next(451, stage="rcpt", times=5)
    with (
        smtp(sink, retries=1) as transport,
        pytest.raises(TransientDeliveryError, match="2 attempts"),
    ):
        send_bytes(transport, wire())
    assert len(sink.messages) == 1


def test_dkim_signed_wire_bytes_verify_after_smtp(sink: SmtpSink, tmp_path: Path) -> None:
    path, record = dkim_key_file(tmp_path / "dkim.pem")
    options = MessageOptions(
        mail_from=OPTIONS.mail_from,
        list_id=OPTIONS.list_id,
        dkim_selector="mail",
        dkim_domain="example.org",
        dkim_private_key=path,
    )
    with smtp(sink) as transport:
        send_bytes(transport, wire(options))
    [received] = sink.messages

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail._domainkey.example.org."
        return record

    assert dkim.verify(received.raw, dnsfunc=dns)
    # The reference signs the same way: its message also verifies after the same trip.
    view = digest_view()
    message = build_message(view, EmailRenderer().render(view), options=options, sent_at=DELIVERED)
    with smtp(sink) as transport:
        transport.send(add_dkim_signature(message, options), envelope_from=BOUNCE, recipient=READER)
    assert dkim.verify(sink.messages[1].raw, dnsfunc=dns)
