"""SmtpTransport against a real aiosmtpd server on loopback (digest.testing.SmtpSink)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from digest.config.settings import Settings
from digest.delivery import OutboxTransport, SmtpTransport, make_transport
from digest.errors import (
    ConfigError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from digest.testing.smtp import SmtpSink

BOUNCE = "bounce@digest.example.org"
READER = "reader@example.com"
UNSUBSCRIBE = (
    "<https://digest.example.org/unsubscribe/"
    + "t" * 120
    + ">, <mailto:unsubscribe@digest.example.org?subject=unsubscribe>"
)


def make_message(n: int = 1, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Paper digest <digest@digest.example.org>"
    message["To"] = READER
    message["Subject"] = f"Your papers, part {n}"
    message["Message-ID"] = f"<digest-{n}@digest.example.org>"
    message["Date"] = "Mon, 15 Jan 2024 08:00:00 +0000"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(f"Paper number {n}.\n")
    return message


def transport_for(sink: SmtpSink, **options: Any) -> SmtpTransport:
    defaults: dict[str, Any] = {"retry_wait": 0, "timeout": 2.0, "local_hostname": "client.test"}
    return SmtpTransport(host=sink.host, port=sink.port, **(defaults | options))


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as running:
        yield running


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it): a throwaway CA and a 127.0.0.1 cert."""
    from cryptography import x509  # noqa: PLC0415 - only these tests need it
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415 - only the TLS tests need it
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - only the TLS tests need it
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415 - only the TLS tests need it

    now = dt.datetime.now(dt.UTC)

    def build(subject: str, key: Any, issuer: x509.Name, signer: Any, *, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        else:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SmtpSink test CA")])
    ca_cert = build("SmtpSink test CA", ca_key, ca_name, ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = build("localhost", leaf_key, ca_name, ca_key, ca=False)

    pem = serialization.Encoding.PEM
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as tmp:  # load_cert_chain reads files only
        chain = Path(tmp) / "server.pem"
        chain.write_bytes(
            leaf_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            + leaf_cert.public_bytes(pem)
        )
        server.load_cert_chain(chain)
    client = ssl.create_default_context(cadata=ca_cert.public_bytes(pem).decode())
    return server, client


# Plain delivery ---------------------------------------------------------------------------


def test_plain_send_delivers_message_with_explicit_envelope(sink: SmtpSink) -> None:
    with transport_for(sink) as transport:
        transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)

    [received] = sink.messages
    assert received.envelope_from == BOUNCE
    assert received.rcpt_tos == (READER,)
    assert received.message["Subject"] == "Your papers, part 1"
    assert received.message["Message-ID"] == "<digest-1@digest.example.org>"
    assert b"\r\n" in received.raw


def test_three_messages_share_one_connection(sink: SmtpSink) -> None:
    with transport_for(sink) as transport:
        for n in (1, 2, 3):
            transport.send(make_message(n), envelope_from=BOUNCE, recipient=f"r{n}@example.com")

    assert [m.rcpt_tos for m in sink.messages] == [(f"r{n}@example.com",) for n in (1, 2, 3)]
    assert sink.connections == 1


def test_long_list_unsubscribe_stays_on_one_line(sink: SmtpSink) -> None:
    message = make_message(List_Unsubscribe=UNSUBSCRIBE)
    assert len(UNSUBSCRIBE) > 200
    with transport_for(sink) as transport:
        transport.send(message, envelope_from=BOUNCE, recipient=READER)

    raw = sink.messages[0].raw
    assert b"List-Unsubscribe: " + UNSUBSCRIBE.encode() + b"\r\n" in raw
    assert b"=?utf-8?" not in raw  # the 78-column policy would RFC 2047-encode it
    assert sink.messages[0].message["List-Unsubscribe"] == UNSUBSCRIBE


def test_internationalized_recipient_uses_smtputf8(sink: SmtpSink) -> None:
    with transport_for(sink) as transport:
        transport.send(make_message(), envelope_from=BOUNCE, recipient="forscher@müller.example")

    assert sink.messages[0].rcpt_tos == ("forscher@müller.example",)


# Retries and failures ---------------------------------------------------------------------


def test_451_twice_then_success_is_retried_and_delivered_once(sink: SmtpSink) -> None:
    sink.fail_next(451, times=2, stage="rcpt")
    with transport_for(sink, retries=3) as transport:
        transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)

    assert len(sink.messages) == 1
    assert sink.connections == 1  # smtplib's RSET kept the session usable


def test_451_forever_gives_up_with_transient_error(sink: SmtpSink) -> None:
    sink.fail_next(451, times=3, stage="data", text="4.3.0 Mailbox busy")
    with transport_for(sink, retries=2) as transport:
        with pytest.raises(TransientDeliveryError) as caught:
            transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)
        # Exactly retries + 1 attempts were made: the next send goes through at once.
        transport.send(make_message(2), envelope_from=BOUNCE, recipient=READER)

    assert "451 4.3.0 Mailbox busy" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert [m.message["Subject"] for m in sink.messages] == ["Your papers, part 2"]


def test_550_at_rcpt_is_permanent_without_retry(sink: SmtpSink) -> None:
    sink.fail_next(550, stage="rcpt", text="5.1.1 No such user")
    with transport_for(sink, retries=3) as transport:
        with pytest.raises(PermanentDeliveryError) as caught:
            transport.send(make_message(), envelope_from=BOUNCE, recipient="gone@example.com")
        transport.send(make_message(2), envelope_from=BOUNCE, recipient=READER)

    assert caught.value.code == 550
    assert "5.1.1 No such user" in str(caught.value)
    # Not retried (a retry would have delivered it), and the same connection carried on.
    assert [m.rcpt_tos for m in sink.messages] == [(READER,)]
    assert sink.connections == 1


def test_554_at_data_is_permanent(sink: SmtpSink) -> None:
    sink.fail_next(554, stage="data", text="5.7.1 Message rejected")
    with (
        transport_for(sink, retries=3) as transport,
        pytest.raises(PermanentDeliveryError) as caught,
    ):
        transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)

    assert caught.value.code == 554
    assert sink.messages == []


def test_421_at_mail_reconnects_and_delivers(sink: SmtpSink) -> None:
    sink.fail_next(421, stage="mail", text="4.3.2 Shutting down")
    with transport_for(sink, retries=1) as transport:
        transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)

    assert len(sink.messages) == 1
    assert sink.connections == 2  # smtplib hangs up on 421; the retry opens a new one


def test_5xx_at_mail_from_is_a_configuration_error(sink: SmtpSink) -> None:
    sink.fail_next(553, stage="mail", text="5.7.1 Sender not allowed")
    with transport_for(sink, retries=3) as transport, pytest.raises(DeliveryError) as caught:
        transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)

    assert type(caught.value) is DeliveryError
    assert "553" in str(caught.value)
    assert "MAIL FROM" in str(caught.value)


@pytest.mark.parametrize("stage", ["connect", "mail"])
def test_dropped_connection_is_retried(sink: SmtpSink, stage: Any) -> None:
    sink.drop_next_connection(stage=stage)
    with transport_for(sink, retries=1) as transport:
        transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)

    assert len(sink.messages) == 1
    assert sink.connections == 2


def test_dropped_connection_without_retries_is_transient(sink: SmtpSink) -> None:
    sink.drop_next_connection(stage="mail")
    with transport_for(sink, retries=0) as transport, pytest.raises(TransientDeliveryError):
        transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)


def test_idle_connection_closed_by_server_reconnects_without_a_retry(sink: SmtpSink) -> None:
    with transport_for(sink, retries=0) as transport:
        transport.send(make_message(1), envelope_from=BOUNCE, recipient=READER)
        sink.drop_connections()
        transport.send(make_message(2), envelope_from=BOUNCE, recipient=READER)

    assert len(sink.messages) == 2
    assert sink.connections == 2


def test_server_down_is_transient() -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = SmtpTransport(host="127.0.0.1", port=port, retries=1, retry_wait=0, timeout=1)
    with transport, pytest.raises(TransientDeliveryError) as caught:
        transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)

    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "gave up after 2 attempts" in str(caught.value)


def test_silent_server_times_out_as_transient() -> None:
    # Listening but never accepting: the kernel completes the handshake, no greeting comes.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        transport = SmtpTransport(host="127.0.0.1", port=port, retries=1, retry_wait=0, timeout=0.2)
        with transport, pytest.raises(TransientDeliveryError, match="timed out"):
            transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)


# TLS and AUTH -----------------------------------------------------------------------------


def test_starttls_with_trusted_self_signed_certificate(tls: Any) -> None:
    server_ctx, client_ctx = tls
    with SmtpSink(tls_context=server_ctx, require_starttls=True) as sink:
        with transport_for(sink, security="starttls", ssl_context=client_ctx) as transport:
            transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)
        assert len(sink.messages) == 1
        assert sink.connections == 1


def test_starttls_required_but_not_used_is_a_configuration_error(tls: Any) -> None:
    server_ctx, _ = tls
    with SmtpSink(tls_context=server_ctx, require_starttls=True) as sink:
        with transport_for(sink, retries=3) as transport, pytest.raises(DeliveryError) as caught:
            transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)
        assert "530" in str(caught.value)
        assert not isinstance(caught.value, TransientDeliveryError | PermanentDeliveryError)


def test_untrusted_certificate_fails_without_retry(tls: Any) -> None:
    server_ctx, _ = tls
    with SmtpSink(tls_context=server_ctx) as sink:
        untrusting = ssl.create_default_context(cadata=_unrelated_ca_pem())
        transport = transport_for(sink, security="starttls", ssl_context=untrusting, retries=3)
        with transport, pytest.raises(DeliveryError, match="TLS failed") as caught:
            transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)
        assert not isinstance(caught.value, TransientDeliveryError)
        assert sink.connections == 1


def test_implicit_ssl(tls: Any) -> None:
    server_ctx, client_ctx = tls
    with SmtpSink(ssl_context=server_ctx) as sink:
        with transport_for(sink, security="ssl", ssl_context=client_ctx) as transport:
            transport.send(make_message(1), envelope_from=BOUNCE, recipient=READER)
            transport.send(make_message(2), envelope_from=BOUNCE, recipient=READER)
        assert len(sink.messages) == 2
        assert sink.connections == 1


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_success(mechanism: str) -> None:
    with SmtpSink(auth_users={"alice": "s3cret"}, auth_mechanisms=[mechanism]) as sink:
        with transport_for(sink, username="alice", password="s3cret") as transport:
            transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)
        assert sink.auth_attempts == [(mechanism, "alice", True)]
        assert len(sink.messages) == 1


def test_auth_failure_is_a_plain_delivery_error() -> None:
    # One mechanism only: smtplib's login() tries every advertised one in turn.
    with SmtpSink(auth_users={"alice": "s3cret"}, auth_mechanisms=["PLAIN"]) as sink:
        transport = transport_for(sink, username="alice", password="wrong", retries=3)
        with transport, pytest.raises(DeliveryError) as caught:
            transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)
        assert type(caught.value) is DeliveryError
        assert "535" in str(caught.value)
        assert sink.auth_attempts == [("PLAIN", "alice", False)]  # not retried
        assert sink.messages == []


def test_auth_configured_but_not_offered_is_a_plain_delivery_error(sink: SmtpSink) -> None:
    transport = transport_for(sink, username="alice", password="s3cret", retries=3)
    with transport, pytest.raises(DeliveryError, match="AUTH") as caught:
        transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)
    assert type(caught.value) is DeliveryError
    assert sink.connections == 1


# Settings and the sink itself -------------------------------------------------------------


def test_make_transport_follows_settings(tmp_path: Path) -> None:
    smtp = make_transport(
        Settings(
            data_dir=tmp_path,
            delivery="smtp",
            smtp_host="mail.example.org",
            smtp_port=587,
            smtp_security="starttls",
            smtp_username="digest",
            smtp_password="pw",
            smtp_retries=5,
        )
    )
    assert isinstance(smtp, SmtpTransport)
    assert (smtp.host, smtp.port, smtp.security) == ("mail.example.org", 587, "starttls")
    assert (smtp.username, smtp.password, smtp.retries) == ("digest", "pw", 5)

    outbox = make_transport(Settings(data_dir=tmp_path, delivery="outbox"))
    assert isinstance(outbox, OutboxTransport)
    assert outbox.directory == tmp_path / "outbox"


def test_username_without_password_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, delivery="smtp", smtp_username="digest")
    with pytest.raises(ConfigError, match="smtp_password"):
        make_transport(settings)


def test_sink_leaves_no_thread_running() -> None:
    before = set(threading.enumerate())
    with SmtpSink() as sink, transport_for(sink) as transport:
        transport.send(make_message(), envelope_from=BOUNCE, recipient=READER)
    assert set(threading.enumerate()) <= before


def _unrelated_ca_pem() -> str:
    """A CA certificate that did not sign the sink's certificate."""
    from cryptography import x509  # noqa: PLC0415 - only this test needs it
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415 - only the TLS tests need it
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415 - only the TLS tests need it
    from cryptography.x509.oid import NameOID  # noqa: PLC0415 - only the TLS tests need it

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Unrelated CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()
