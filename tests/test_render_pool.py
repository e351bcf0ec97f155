"""The render pool's worker processes give the same bytes as rendering in the run's process.

Large runs render in spawned processes (``delivery/renderpool.py``); small ones, and every
other test, render in process. Here the same recorded digests go through both.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.config.settings import Settings
from digest.delivery import pipeline
from digest.delivery.renderpool import Rendered, RenderPool, render_batch
from digest.ranking import get_ranker
from digest.render.batch import Batch, load_batch, papers_of, payloads_from_recorded
from digest.runner import _render_setup, build_due_digests, run_digests
from digest.store import db
from tests.scheduler_support import add_papers, subscribe

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_worker_processes_render_the_same_bytes_as_the_run_process(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(secret_key="k" * 32)  # vote links on, as in a real run
    add_papers(settings, now=NOW - timedelta(hours=3), count=4)
    for i in range(6):
        subscribe(settings, f"reader{i}@example.org", at=NOW - timedelta(days=2))
    _, recorded, _ = build_due_digests(
        db.get_engine(settings), settings=settings, now=NOW, ranker=get_ranker(settings.ranker)
    )
    payloads = list(payloads_from_recorded(recorded, now=NOW).values())
    assert len(payloads) == 6
    setup, papers = _render_setup(settings, NOW), papers_of(recorded)
    results = []
    with RenderPool(setup, dict(papers), processes=1) as pool:
        results.append(list(pool.submit(Batch(payloads)).result().items))
    # Renderer processes started before the papers are known (a run starts them as it
    # records), handed the papers later.
    with RenderPool(setup, processes=2) as pool:
        pool.start()
        pool.share(dict(papers))
        halves = [Batch(payloads[:3]), Batch(payloads[3:])]  # both workers get work
        futures = [pool.submit(batch) for batch in halves]
        results.append([item for f in futures for item in f.result().items])
        # The outbox's way: each message written to a file in the spool, its path sent back.
        spool = tmp_path / "spool"
        spool.mkdir()
        spooled = pool.submit(Batch(payloads), spool=str(spool)).result().items
        with pytest.raises(RuntimeError, match="already hold"):
            pool.share({})
    in_process, in_workers = results
    assert all(isinstance(item, Rendered) for item in in_workers)
    assert all(b"Less like this" in item.data for item in in_workers)  # type: ignore[union-attr]
    assert in_workers == in_process  # the same subjects, Message-IDs and wire bytes
    assert len(spooled) == len(in_process) == len(list(spool.iterdir()))
    for item, expected in zip(spooled, in_process, strict=True):
        assert isinstance(item, Rendered) and isinstance(expected, Rendered)
        assert item.data == b"" and item.path is not None
        assert Path(item.path).parent == spool
        assert Path(item.path).read_bytes() == expected.data
        assert replace(item, data=expected.data, path=None) == expected


def test_a_spool_that_cannot_be_written_sends_the_bytes_back(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    add_papers(settings, now=NOW - timedelta(hours=3), count=2)
    subscribe(settings, "reader@example.org", at=NOW - timedelta(days=2))
    _, recorded, _ = build_due_digests(
        db.get_engine(settings), settings=settings, now=NOW, ranker=get_ranker(settings.ranker)
    )
    payloads = list(payloads_from_recorded(recorded, now=NOW).values())
    setup, papers = _render_setup(settings, NOW), papers_of(recorded)
    gone = str(tmp_path / "no such spool")
    (item,) = render_batch(Batch(payloads), papers, setup, spool=gone)
    (expected,) = render_batch(Batch(payloads), papers, setup)
    assert isinstance(item, Rendered) and item.path is None
    assert item == expected
    assert not Path(gone).exists()


def test_the_papers_file_is_removed_when_the_pool_closes(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    with RenderPool(_render_setup(settings, NOW), {}, processes=2) as pool:
        papers_file = pool._papers_file
        assert papers_file is not None and papers_file.exists()
    assert not papers_file.exists()


def test_payloads_from_the_run_memory_equal_the_stored_ones(
    make_settings: Callable[..., Settings],
) -> None:
    """Phase 1's payloads (built on demand from the picks) are what the ledger stored: the
    same items, scores, reasons and matched interests as a retry would read back."""
    settings = make_settings()
    add_papers(settings, now=NOW - timedelta(hours=3), count=6)
    for i in range(4):
        subscribe(settings, f"reader{i}@example.org", at=NOW - timedelta(days=2))
    _, recorded, _ = build_due_digests(
        db.get_engine(settings), settings=settings, now=NOW, ranker=get_ranker(settings.ranker)
    )
    memory = payloads_from_recorded(recorded, now=NOW)
    assert len(memory) == 4 and set(memory) == {entry.digest_id for entry in recorded}
    with db.transaction(settings) as session:
        stored = load_batch(session, list(memory), known_papers=set()).payloads
    assert [memory[p.digest_id] for p in stored] == stored
    assert all(p.items for p in stored)


CHILD = """
import pickle, sys, time
from digest.delivery.renderpool import RenderPool
from digest.render.batch import Batch
with open(sys.argv[1], "rb") as handle:
    setup = pickle.load(handle)
pool = RenderPool(setup, {}, processes=2)
for future in [pool.submit(Batch([])) for _ in range(4)]:
    future.result()
assert pool._executor is not None
print(*pool._executor._processes, pool._papers_file, flush=True)
time.sleep(120)
"""


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaps (PID 1 in a container may not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def test_renderers_end_when_the_run_is_killed_and_their_papers_file_goes_next_time(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """A run killed with SIGKILL (or by the OOM killer) cannot close its pool: its renderer
    processes notice they lost their parent and exit, and the next pool removes the dead
    run's papers file."""
    setup_file = tmp_path / "setup.pickle"
    setup_file.write_bytes(pickle.dumps(_render_setup(make_settings(), NOW)))
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(setup_file)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None
            *pids, papers_name = child.stdout.readline().split()
        finally:
            child.kill()  # SIGKILL: no cleanup of any kind in the run
    workers = [int(pid) for pid in pids]
    assert len(workers) == 2 and Path(papers_name).exists()
    deadline = time.monotonic() + 15
    while not all(_gone(pid) for pid in workers):
        assert time.monotonic() < deadline, "renderer processes outlived their run"
        time.sleep(0.1)
    assert Path(papers_name).exists()  # nobody closed the pool
    with RenderPool(_render_setup(make_settings(), NOW), {}, processes=2):
        assert not Path(papers_name).exists()


def test_a_run_starts_its_renderers_before_recording_and_sends_everything(
    make_settings: Callable[..., Settings],
) -> None:
    """With renderer processes, a run starts them once its digests are selected (their
    start-up overlaps the recording), hands them the papers afterwards, and sends every
    digest once."""
    settings = make_settings(secret_key="k" * 32, render_processes=2)
    add_papers(settings, now=NOW - timedelta(hours=3), count=4)
    for i in range(5):
        subscribe(settings, f"reader{i}@example.org", at=NOW - timedelta(days=2))
    steps: list[str] = []
    started: list[str] = []
    original = RenderPool.start

    def start(pool: RenderPool) -> None:
        started.append(steps[-1])  # the last step that ended before the renderers started
        original(pool)

    class Steps:
        def step(self, name: str, seconds: float) -> None:
            steps.append(name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RenderPool, "start", start)
        report = run_digests(settings, now=NOW, observer=Steps())
    assert started == ["select"]  # after selecting, before "record"
    assert steps.index("select") < steps.index("record")
    assert report.sent == 5 and report.failed == 0
    assert len(list(settings.resolved_outbox_dir.glob("*.eml"))) == 5
    # the renderers wrote the files into the outbox's spool; nothing is left there
    assert list((settings.resolved_outbox_dir / ".tmp").iterdir()) == []


@pytest.mark.parametrize("processes", [1, 2])
def test_the_heap_is_trimmed_after_a_batch_only_when_its_bytes_came_here(
    make_settings: Callable[..., Settings], processes: int
) -> None:
    """Renderer processes write the outbox's files themselves: the run's process never
    holds those messages, so it does not trim its heap after each batch (a few ms each);
    rendering in this process, it does."""
    settings = make_settings(render_processes=processes, delivery_batch=2)
    add_papers(settings, now=NOW - timedelta(hours=3), count=3)
    for i in range(4):
        subscribe(settings, f"reader{i}@example.org", at=NOW - timedelta(days=2))
    trims: list[int] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "release_free_memory", lambda: trims.append(1))
        report = run_digests(settings, now=NOW)
    assert report.sent == 4
    assert len(trims) == (2 if processes == 1 else 0)  # two batches of two
    assert len(list(settings.resolved_outbox_dir.glob("*.eml"))) == 4
