"""DkimSigner: dkimpy's DKIM-Signature line byte for byte, verified by dkimpy, one key parse.

dkimpy is the reference: each case signs with ``dkim.sign`` first, reads its ``t=`` and signs
again with :class:`DkimSigner` at that timestamp (RSASSA-PKCS1-v1_5 is deterministic, so the
lines must be equal), then ``dkim.verify`` checks the result.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dkim_keys import dkim_key  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from render_fixtures import DELIVERED, digest_view  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package

from digest.delivery.dkim_signer import DkimSigner
from digest.delivery.fastmime import wire_message
from digest.delivery.message import (
    DKIM_HEADERS,
    MessageOptions,
    build_message,
    dkim_signer,
    sign_message,
    signer_for,
)
from digest.delivery.wire import message_bytes
from digest.errors import ConfigError, RenderError
from digest.render.email import EmailRenderer

SELECTOR, DOMAIN = "sel1", "example.org"
INCLUDE = [name.lower().encode() for name in DKIM_HEADERS]
RENDERER = EmailRenderer()
OPTIONS = MessageOptions(
    mail_from="Paper digest <digest@example.org>",
    list_id="Paper digest <digest.example.org>",
    unsubscribe_mailto="unsubscribe@example.org",
)


class Key:
    """An RSA key as PEM (PKCS#1 or PKCS#8) and the DNS record dkimpy verifies with."""

    def __init__(self, bits: int, private_format: serialization.PrivateFormat) -> None:
        self.pem, self.record = dkim_key(bits, private_format)
        self.signer = DkimSigner(
            selector=SELECTOR, domain=DOMAIN, private_key=self.pem, headers=DKIM_HEADERS
        )

    def dns(self, name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
        return self.record


@pytest.fixture(
    scope="module",
    params=[
        (1024, serialization.PrivateFormat.TraditionalOpenSSL),  # PKCS#1
        (2048, serialization.PrivateFormat.PKCS8),
        (2048, serialization.PrivateFormat.TraditionalOpenSSL),
        (1024, serialization.PrivateFormat.PKCS8),
    ],
    ids=["1024-pkcs1", "2048-pkcs8", "2048-pkcs1", "1024-pkcs8"],
)
def key(request: pytest.FixtureRequest) -> Key:
    bits, private_format = request.param
    return Key(bits, private_format)


@pytest.fixture(scope="module")
def small_key() -> Key:
    return Key(1024, serialization.PrivateFormat.PKCS8)


def dkimpy_signature(message: bytes, pem: bytes) -> tuple[bytes, int]:
    """dkimpy's header line for ``message`` and the ``t=`` it wrote."""
    line: bytes = dkim.sign(
        message,
        SELECTOR.encode(),
        DOMAIN.encode(),
        pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=INCLUDE,
    )
    found = re.search(rb"\bt=(\d+);", line)
    assert found is not None
    return line, int(found.group(1))


def assert_same_as_dkimpy(message: bytes, key: Key) -> bytes:
    expected, timestamp = dkimpy_signature(message, key.pem)
    line = key.signer.signature(message, timestamp=timestamp)
    assert line == expected
    return line


def digest_message(**changes: object) -> bytes:
    view = replace(digest_view(), **changes)
    message = build_message(view, RENDERER.render(view), options=OPTIONS, sent_at=DELIVERED)
    return message_bytes(message)


HEADERS = (
    b"From: Paper digest <digest@example.org>\r\n"
    b"To: =?utf-8?q?Zo=C3=AB_=C3=85ngstr=C3=B6m?= <zoe@example.org>\r\n"
    b"Subject: =?utf-8?q?Neue_Arbeiten_=E2=80=94_Woche_47?=\r\n"
    b" =?utf-8?q?_und_mehr?=\r\n"
    b"Date: Mon, 23 Nov 2026 08:00:00 +0000\r\n"
    b"Message-ID: <digest.0123@example.org>\r\n"
    b"List-Id:   Paper digest\t <digest.example.org>  \r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
)
BODIES = {
    "plain": b"Hello,\r\n\r\nthree papers this week.\r\n",
    "empty": b"",
    "only empty lines": b"\r\n\r\n\r\n",
    "trailing empty lines": b"line\r\n\r\n\r\n\r\n",
    "no final CRLF": b"first\r\nlast  \t",
    "trailing whitespace": b"a  \r\nb\t\r\nc \t \r\n  \r\n",
    "runs of whitespace": b"  lead\r\nin  the \t\t middle\r\n\tand tabs\t\r\n",
    "bare CR": b"a\rb\r\r\n \r\n",
    "long": b"".join(b"%05d " % i + b"x" * (i % 90) + b"  \r\n" for i in range(3000)),
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_same_line_as_dkimpy_for_each_body(body: bytes, key: Key) -> None:
    message = HEADERS + b"\r\n" + body
    line = assert_same_as_dkimpy(message, key)
    assert dkim.verify(line + message, dnsfunc=key.dns)


def test_same_line_for_digest_messages(key: Key) -> None:
    """Real digests: non-ASCII names and subjects (encoded, folded), quoted-printable parts."""
    for changes in (
        {},
        {"subscriber_name": "Zoë Ångström-Ørsted, Jr."},
        {"subscriber_name": "李雷 " * 12},
        {"subscriber_name": None},
    ):
        message = digest_message(**changes)
        line = assert_same_as_dkimpy(message, key)
        assert dkim.verify(line + message, dnsfunc=key.dns)


@pytest.mark.parametrize(
    "message",
    [
        # Headers listed in DKIM_HEADERS but absent, others present twice (the last counts).
        b"From: first@example.org\r\nTo: a@example.org\r\nFrom: second@example.org\r\n"
        b"X-Other: 1\r\n\r\nbody\r\n",
        # Folding with tabs, a header-only message, an mbox "From " line, LF line ends.
        b"From: a@example.org\r\nSubject: folded\r\n\t  twice\r\n  \tand again\r\n",
        b"From a@example.org Mon Nov 23 08:00:00 2026\r\nFrom: a@example.org\r\n\r\nx",
        b"From: a@example.org\nSubject: LF only \n\nbody  \n\n\n",
        b"From: a@example.org\r\nSubject: mixed\n\r\nbody\nmore\r\n",
        b"\r\nno headers at all\r\n",
    ],
)
def test_same_line_for_odd_messages(message: bytes, small_key: Key) -> None:
    assert_same_as_dkimpy(message, small_key)


WSP = st.sampled_from([b" ", b"  ", b"\t", b" \t ", b""])
WORD = st.sampled_from([b"abc", b"=C3=A9", b"x" * 80, b"-", b"\r", b"Zo\xc3\xab"])
LINE = st.lists(st.one_of(WSP, WORD), max_size=12).map(b"".join)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    subject=LINE,
    body=st.lists(LINE, max_size=30).map(b"\r\n".join),
    end=st.sampled_from([b"", b"\r\n", b"\r\n\r\n"]),
)
def test_same_line_as_dkimpy_on_random_input(
    subject: bytes, body: bytes, end: bytes, small_key: Key
) -> None:
    message = b"From: a@example.org\r\nSubject:" + subject + b"\r\n\r\n" + body + end
    line = assert_same_as_dkimpy(message, small_key)
    assert dkim.verify(line + message, dnsfunc=small_key.dns)


def test_verification_fails_on_a_changed_message(small_key: Key) -> None:
    message = digest_message()
    signed = small_key.signer.signature(message) + message
    assert dkim.verify(signed, dnsfunc=small_key.dns)
    for old, new in (
        (b"List-Unsubscribe=One-Click", b"List-Unsubscribe=Two-Click"),
        (b"Content-Transfer-Encoding", b"Content-Transfer-Encoding "),  # body: one space more
    ):
        assert old in signed
        assert not dkim.verify(signed.replace(old, new, 1), dnsfunc=small_key.dns)


def test_timestamp_defaults_to_now(small_key: Key) -> None:
    before = int(time.time())
    line = small_key.signer.signature(digest_message())
    found = re.search(rb"\bt=(\d+);", line)
    assert found is not None
    assert before <= int(found.group(1)) <= time.time()


def test_sign_message_fixes_the_timestamp(small_key: Key) -> None:
    message = digest_message()
    expected, timestamp = dkimpy_signature(message, small_key.pem)
    signed = sign_message(
        message, selector=SELECTOR, domain=DOMAIN, private_key=small_key.pem, timestamp=timestamp
    )
    assert signed == expected + message


def test_fast_wire_bytes_carry_the_same_signature(small_key: Key, tmp_path: Path) -> None:
    """fastmime's line is the signer's, unfolded onto one line as the reference path writes it."""
    path = tmp_path / "key.pem"
    path.write_bytes(small_key.pem)
    options = replace(OPTIONS, dkim_selector=SELECTOR, dkim_domain=DOMAIN, dkim_private_key=path)
    view = digest_view()
    data = wire_message(view, RENDERER.render(view), options=options, sent_at=DELIVERED).data
    found = re.search(rb"\r\nDKIM-Signature: ([^\r]*\bt=(\d+);[^\r]*)\r\n", data)
    assert found is not None
    unsigned = data.replace(found.group(0), b"\r\n", 1)
    line = small_key.signer.signature(unsigned, timestamp=int(found.group(2)))
    assert b" ".join(line.split()[1:]) == found.group(1)
    assert dkim.verify(data, dnsfunc=small_key.dns)


def test_the_key_is_parsed_once_per_process(small_key: Key, tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(small_key.pem)
    options = replace(OPTIONS, dkim_selector=SELECTOR, dkim_domain=DOMAIN, dkim_private_key=path)
    first = signer_for(options)
    assert first is not None
    assert signer_for(options) is first
    assert dkim_signer(SELECTOR, DOMAIN, small_key.pem) is first
    assert signer_for(OPTIONS) is None  # DKIM not configured


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, password: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.mark.parametrize(
    ("make_pem", "match"),
    [
        (lambda: b"not a key", "DKIM signing failed \\(check the key\\)"),
        (
            lambda: b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "check the key",
        ),
        (lambda: _pem(rsa.generate_private_key(65537, 1024), b"secret"), "check the key"),
        (lambda: _pem(ec.generate_private_key(ec.SECP256R1()), None), "not an RSA private key"),
    ],
    ids=["garbage", "damaged", "encrypted", "not RSA"],
)
def test_a_bad_key_is_one_config_error_line(make_pem: Callable[[], bytes], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        DkimSigner(selector=SELECTOR, domain=DOMAIN, private_key=make_pem(), headers=DKIM_HEADERS)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("selector", ["", "two words", "a;b", "b=x", "sélecteur"])
def test_a_bad_selector_is_a_config_error(selector: str, small_key: Key) -> None:
    with pytest.raises(ConfigError, match="DKIM selector"):
        DkimSigner(selector=selector, domain=DOMAIN, private_key=small_key.pem, headers=["From"])


def test_from_must_be_signed(small_key: Key) -> None:
    with pytest.raises(ConfigError, match="From"):
        DkimSigner(selector=SELECTOR, domain=DOMAIN, private_key=small_key.pem, headers=["To"])


def test_a_malformed_header_block_is_a_render_error(small_key: Key) -> None:
    with pytest.raises(RenderError, match="not a header line"):
        small_key.signer.signature(b"From: a@example.org\r\nno colon here\r\n\r\nbody")
    with pytest.raises(RenderError, match="folded line"):
        small_key.signer.signature(b" From: a@example.org\r\n\r\nbody")
