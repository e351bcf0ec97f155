"""The run's outbox sender: a writer thread, durable batches, outcomes only once durable.

Real files in a temporary directory; the writer thread is the real one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from digest.delivery import outbox
from digest.delivery.base import Outcome, Outgoing
from digest.delivery.senders import OUTBOX_IDLE_FLUSH, OutboxSender
from digest.errors import DeliveryError


def message(n: int) -> Outgoing:
    data = f"Message-ID: <d{n}@digest.example.org>\r\n\r\nbody {n}\r\n".encode()
    return Outgoing(
        n, data, "bounce@example.org", f"r{n}@example.org", f"<d{n}@digest.example.org>"
    )


def eml(directory: Path, n: int) -> Path:
    return directory / outbox.eml_name(f"<d{n}@digest.example.org>")


def test_a_full_batch_is_reported_sent_once_its_files_are_in_place(tmp_path: Path) -> None:
    with OutboxSender(tmp_path, batch=4) as sender:
        for n in range(10):
            sender.submit(message(n))
        outcomes = sender.collect(wait=True)
        assert sorted(o.key for o in outcomes) == list(range(10))
        assert {o.status for o in outcomes} == {"sent"}
        for n in range(10):
            assert eml(tmp_path, n).read_bytes() == message(n).data
    assert list((tmp_path / ".tmp").iterdir()) == []  # nothing half-done is left behind


def test_a_partial_batch_becomes_durable_once_the_writer_is_idle(tmp_path: Path) -> None:
    with OutboxSender(tmp_path, batch=256) as sender:
        sender.submit(message(1))
        deadline = time.monotonic() + 10 * OUTBOX_IDLE_FLUSH + 5
        outcomes: list[Outcome] = []
        while not outcomes and time.monotonic() < deadline:
            time.sleep(OUTBOX_IDLE_FLUSH / 2)
            outcomes = sender.collect()
        assert [(o.key, o.status) for o in outcomes] == [(1, "sent")]
        assert eml(tmp_path, 1).exists()


def test_nothing_is_reported_sent_before_it_is_renamed_into_place(tmp_path: Path) -> None:
    with OutboxSender(tmp_path, batch=256) as sender:
        sender.submit(message(1))
        for outcome in sender.collect():  # whenever an outcome shows, its file is there
            assert eml(tmp_path, outcome.key).exists()
        sender.collect(wait=True)
        assert eml(tmp_path, 1).exists()


def test_after_stop_what_is_still_queued_is_deferred_and_never_written(tmp_path: Path) -> None:
    with OutboxSender(tmp_path, batch=2) as sender:
        sender.stop("the lease was lost")
        for n in range(3):
            sender.submit(message(n))
        outcomes = sender.collect(wait=True)
    assert {(o.status, o.error) for o in outcomes} == {("deferred", "the lease was lost")}
    assert sorted(o.key for o in outcomes) == [0, 1, 2]
    assert not any(eml(tmp_path, n).exists() for n in range(3))


def test_a_vanished_outbox_defers_with_the_reason(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"
    with OutboxSender(directory, batch=2) as sender:
        shutil.rmtree(directory)
        directory.write_text("in the way")  # not a directory any more
        sender.submit(message(1))
        outcomes = sender.collect(wait=True)
    assert [o.status for o in outcomes] == ["deferred"]
    assert outcomes[0].error is not None and "cannot write" in outcomes[0].error


def test_a_writer_that_dies_is_an_error_in_the_runs_thread(tmp_path: Path) -> None:
    class Broken(OutboxSender):
        def _write(self, message: Outgoing) -> None:
            raise RuntimeError("a bug in the writer")

    with Broken(tmp_path, batch=2) as sender, pytest.raises(DeliveryError, match="a bug"):
        sender.submit(message(1))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            sender.collect()  # raises once the writer has died
            time.sleep(0.01)


def test_leaving_early_removes_the_unreported_temporaries(tmp_path: Path) -> None:
    with OutboxSender(tmp_path, batch=256) as sender:
        sender.submit(message(1))
        sender.submit(message(2))
    # written but never reported: gone (the next run resends them); or durable already
    assert list((tmp_path / ".tmp").iterdir()) == []


def spooled(sender: OutboxSender, n: int) -> Outgoing:
    """Message ``n`` as a renderer process hands it over: written to the spool, by path."""
    assert sender.spool is not None
    path = Path(sender.spool) / f"{n}.renderer.tmp"
    path.write_bytes(message(n).data)
    return Outgoing(
        n, b"", "bounce@example.org", f"r{n}@example.org", message(n).message_id, str(path)
    )


def test_files_written_to_the_spool_are_renamed_into_place_and_reported_sent(
    tmp_path: Path,
) -> None:
    with OutboxSender(tmp_path, batch=4) as sender:
        assert sender.spool is not None and Path(sender.spool).parent == tmp_path / ".tmp"
        for n in range(10):
            sender.submit(spooled(sender, n) if n % 2 else message(n))
        outcomes = sender.collect(wait=True)
        assert sorted((o.key, o.status) for o in outcomes) == [(n, "sent") for n in range(10)]
        for n in range(10):
            assert eml(tmp_path, n).read_bytes() == message(n).data
        assert list(Path(sender.spool).iterdir()) == []  # moved, not copied
    assert list((tmp_path / ".tmp").iterdir()) == []  # the spool goes with the sender


def test_after_stop_a_spooled_file_is_deferred_and_removed(tmp_path: Path) -> None:
    with OutboxSender(tmp_path, batch=2) as sender:
        sender.stop("the lease was lost")
        outgoing = spooled(sender, 1)
        sender.submit(outgoing)
        outcomes = sender.collect(wait=True)
        assert [(o.key, o.status) for o in outcomes] == [(1, "deferred")]
        assert outgoing.path is not None and not Path(outgoing.path).exists()
    assert not eml(tmp_path, 1).exists()


def test_files_left_in_the_spool_go_with_the_sender(tmp_path: Path) -> None:
    """A renderer's file never handed over (the run stopped first) is removed on exit."""
    with OutboxSender(tmp_path, batch=2) as sender:
        spooled(sender, 1)  # written, never submitted
        spooled(sender, 2)
    assert list((tmp_path / ".tmp").iterdir()) == []
    assert list(tmp_path.glob("*.eml")) == []


def test_the_spool_of_a_killed_run_is_removed_by_the_next_sender(tmp_path: Path) -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as child:
        child.kill()
    host = socket.gethostname()
    dead = tmp_path / ".tmp" / f"spool-{child.pid}-0a1b2c3d@{host}"
    alive = tmp_path / ".tmp" / f"spool-{os.getpid()}-0a1b2c3d@{host}"  # another sender of ours
    elsewhere = tmp_path / ".tmp" / f"spool-{child.pid}-0a1b2c3d@not-{host}"  # its own host's
    for spool in (dead, alive, elsewhere):
        spool.mkdir(parents=True)
        (spool / "1.renderer.tmp").write_bytes(b"half a message")
    with OutboxSender(tmp_path) as sender:
        assert not dead.exists() and alive.exists() and elsewhere.exists()
        assert sender.spool is not None and Path(sender.spool) not in (dead, alive)
        assert Path(sender.spool).name.endswith(f"@{host}")
    assert alive.exists() and elsewhere.exists()
