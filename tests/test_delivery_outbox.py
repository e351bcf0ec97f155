"""OutboxTransport: one .eml file per Message-ID, written atomically."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.delivery import OutboxTransport, eml_name, message_bytes
from digest.errors import DeliveryError

UNSUBSCRIBE = (
    "<https://digest.example.org/unsubscribe/"
    + "t" * 120
    + ">, <mailto:unsubscribe@digest.example.org?subject=unsubscribe>"
)


def make_message(body: str = "Three new papers.\n", message_id: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Paper digest <digest@digest.example.org>"
    message["To"] = "reader@example.com"
    message["Subject"] = "Your weekly papers — 3 new"
    message["Date"] = "Mon, 15 Jan 2024 08:00:00 +0000"
    message["Message-ID"] = message_id or "<digest.42.2024-W03@digest.example.org>"
    message["List-Unsubscribe"] = UNSUBSCRIBE
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["List-Id"] = "Paper digest <digest.example.org>"
    message.set_content(body)
    message.add_alternative(f"<p>{body}</p>", subtype="html")
    return message


def send(transport: OutboxTransport, message: EmailMessage) -> None:
    transport.send(message, envelope_from="bounce@digest.example.org", recipient="reader@x.org")


def test_writes_one_eml_named_after_the_message_id(tmp_path: Path) -> None:
    outbox = tmp_path / "data" / "outbox"  # does not exist yet
    with OutboxTransport(outbox) as transport:
        send(transport, make_message())

    assert [p.name for p in outbox.iterdir()] == ["digest.42.2024-W03@digest.example.org.eml"]


def test_file_holds_wire_bytes_that_parse_back_to_the_same_headers(tmp_path: Path) -> None:
    message = make_message()
    with OutboxTransport(tmp_path) as transport:
        send(transport, message)
        path = transport.path_for(message)

    raw = path.read_bytes()
    assert raw == message_bytes(message)
    assert raw.count(b"\r\n") == raw.count(b"\n")  # CRLF throughout
    assert b"List-Unsubscribe: " + UNSUBSCRIBE.encode() + b"\r\n" in raw  # one line, no =?utf-8?
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert list(parsed.items()) == list(message.items())
    assert [part.get_content_type() for part in parsed.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]


def test_same_message_id_replaces_the_file(tmp_path: Path) -> None:
    with OutboxTransport(tmp_path) as transport:
        send(transport, make_message("first try\n"))
        send(transport, make_message("second try\n"))
        send(transport, make_message("other\n", message_id="<digest.43@digest.example.org>"))

    assert len(list(tmp_path.iterdir())) == 2
    retried = transport.path_for(make_message()).read_bytes()
    assert b"second try" in retried
    assert b"first try" not in retried


def test_write_is_atomic_replace_not_rewrite(tmp_path: Path) -> None:
    transport = OutboxTransport(tmp_path)
    first = make_message("first try\n")
    send(transport, first)
    path = transport.path_for(first)

    with path.open("rb") as reader:  # a reader that opened the old file…
        send(transport, make_message("second try\n"))
        assert b"first try" in reader.read()  # …still sees it whole: a new inode replaced it

    assert b"second try" in path.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_unwritable_outbox_is_a_delivery_error(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(DeliveryError, match="outbox"):
        send(OutboxTransport(blocker), make_message())


def test_message_without_message_id_is_refused(tmp_path: Path) -> None:
    message = make_message()
    del message["Message-ID"]
    with pytest.raises(ValueError, match="Message-ID"):
        send(OutboxTransport(tmp_path), message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("message_id", "expected"),
    [
        ("<abc@example.org>", "abc@example.org.eml"),
        ("  <abc@example.org>  ", "abc@example.org.eml"),
        ("<a.b+c=d-e_f@example.org>", "a.b+c=d-e_f@example.org.eml"),
    ],
)
def test_eml_name_keeps_safe_ids_readable(message_id: str, expected: str) -> None:
    assert eml_name(message_id) == expected


@pytest.mark.parametrize(
    "message_id", ["<../../etc/passwd@x>", "<a/b@x>", "<a\\b@x>", "<.hidden@x>", "<a b@x>"]
)
def test_eml_name_neutralises_unsafe_characters(message_id: str) -> None:
    name = eml_name(message_id)
    assert "/" not in name
    assert "\\" not in name
    assert " " not in name
    assert not name.startswith(".")
    assert name.endswith(".eml")


def test_eml_name_distinguishes_ids_that_sanitise_alike() -> None:
    assert eml_name("<a/b@x>") != eml_name("<a_b@x>")
    assert eml_name("<a/b@x>") != eml_name("<a\\b@x>")


def test_eml_name_bounds_long_ids() -> None:
    long_a, long_b = "<" + "a" * 400 + "1@x>", "<" + "a" * 400 + "2@x>"
    assert len(eml_name(long_a)) < 200
    assert eml_name(long_a) != eml_name(long_b)


def test_non_ascii_headers_keep_rfc2047_sized_encoded_words(tmp_path: Path) -> None:
    # At 998 columns Python would write one encoded word of ~500 characters; RFC 2047 §2
    # caps an encoded word at 75, so headers that need encoding still fold at 78.
    message = make_message()
    message.replace_header("Subject", "Neue Arbeiten über Diffusionsmodelle — " * 6)
    with OutboxTransport(tmp_path) as transport:
        send(transport, message)
        raw = transport.path_for(message).read_bytes()

    lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    first = next(i for i, line in enumerate(lines) if line.startswith(b"Subject: "))
    subject_lines = [lines[first]]
    for line in lines[first + 1 :]:
        if not line.startswith(b" "):
            break
        subject_lines.append(line)
    assert len(subject_lines) > 1
    assert all(len(line) <= 78 for line in subject_lines)
    assert all(len(word) <= 75 for line in subject_lines for word in line.split())
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert parsed["Subject"] == message["Subject"]
    assert parsed["List-Unsubscribe"] == UNSUBSCRIBE
