"""Rendering batches of digests into wire messages, in worker processes.

:func:`render_batch` is pure: payloads (:mod:`digest.render.batch`) and papers in, one
:class:`Rendered` (subject, Message-ID, exact wire bytes) or :class:`RenderFailure` per digest
out. :class:`RenderPool` runs it on the machine's cores (a process pool: the templates are
compiled once per process, the run's papers read once per process from a file) and keeps a
few batches in flight so rendering overlaps sending; with ``processes <= 1`` (small runs, tests)
it renders in this process. Given a *spool* directory (the outbox sender's), renderer
processes write each message's bytes to a file there and send back only its path: the
bytes never cross the pool's pipe.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from digest.delivery import qp
from digest.delivery.fastmime import message_writer
from digest.delivery.message import MessageOptions
from digest.delivery.outbox import write_file
from digest.digests.claims import process_alive
from digest.errors import DigestError
from digest.render.assemble import ViewOptions
from digest.render.batch import Batch, PaperFields, digest_view
from digest.render.email import cached_renderer


@dataclass(frozen=True, slots=True)
class RenderSetup:
    """What a renderer process needs, once (picklable)."""

    templates_dir: Path | None
    site_name: str
    views: ViewOptions
    message: MessageOptions
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class Rendered:
    digest_id: int
    recipient: str
    subject: str
    message_id: str
    data: bytes  # the wire bytes; empty when they were written to ``path``
    path: str | None = None  # a file in the spool holding the wire bytes


@dataclass(frozen=True, slots=True)
class RenderFailure:
    digest_id: int
    error: str


@dataclass(frozen=True, slots=True)
class RenderedBatch:
    """A batch's messages, and how long the renderer worked on them: seconds of wall clock
    and of the renderer process's CPU time."""

    items: list[Rendered | RenderFailure]
    seconds: float
    cpu: float = 0.0


_spooled = itertools.count()  # this process's spool files


def spool_file(spool: str, digest_id: int, data: bytes) -> str | None:
    """Write ``data`` to a new file in the directory ``spool``: its path, or None when it
    could not be written (the bytes then travel as they are)."""
    path = f"{spool}{os.sep}{digest_id}.{os.getpid()}.{next(_spooled)}.tmp"
    try:
        write_file(path, data, exclusive=True)
    except OSError:
        return None
    return path


def render_batch(
    batch: Batch,
    papers: Mapping[int, PaperFields],
    setup: RenderSetup,
    *,
    spool: str | None = None,
) -> list[Rendered | RenderFailure]:
    """Render every payload of ``batch`` (papers: the batch's own, then ``papers``); with
    ``spool``, each message's bytes are written to a file there (:func:`spool_file`)."""
    renderer = cached_renderer(setup.templates_dir, setup.site_name)
    writer = message_writer(setup.message)
    known = {**papers, **batch.papers} if batch.papers else papers
    out: list[Rendered | RenderFailure] = []
    for payload in batch.payloads:
        try:
            view = digest_view(payload, known, options=setup.views)
            wire = writer.write(view, renderer.render(view), sent_at=setup.sent_at)
        except DigestError as exc:  # a bad address or template: this digest only
            out.append(RenderFailure(payload.digest_id, " ".join(str(exc).split())))
            continue
        path = None if spool is None else spool_file(spool, payload.digest_id, wire.data)
        out.append(
            Rendered(
                payload.digest_id,
                payload.email,
                wire.subject,
                wire.message_id,
                wire.data if path is None else b"",
                path,
            )
        )
    return out


@dataclass(slots=True)
class _WorkerState:
    """A renderer process's state: the setup from its initializer, the papers it holds."""

    setup: RenderSetup | None = None
    papers: dict[int, PaperFields] = field(default_factory=dict)
    papers_file: str | None = None  # the run's papers, once read


_WORKER = _WorkerState()


PARENT_CHECK_SECONDS = 0.5
PAPERS_PREFIX = "digest-papers-"


def _exit_with_parent(parent: int) -> None:
    """End this renderer when the run that started it is gone (SIGKILL, OOM killer): the
    pool's pipes never report it (every worker holds both ends), so it would wait forever."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _init_worker(setup: RenderSetup, parent: int) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _WORKER.setup = setup
    cached_renderer(setup.templates_dir, setup.site_name)  # compile the templates now
    qp.compile_kernel()  # load the quoted-printable kernel now, not in the first batch


def _ready() -> None:
    """A renderer's first task: nothing (its initializer has run; see RenderPool.start)."""


def _read_papers(papers_file: str | None) -> None:
    """Load the run's papers once (a renderer may start before they are known)."""
    if papers_file is None or papers_file == _WORKER.papers_file:
        return
    with open(papers_file, "rb") as handle:  # noqa: PTH123 - a plain binary read
        papers: dict[int, PaperFields] = pickle.load(handle)  # noqa: S301 - our own file
    _WORKER.papers.update(papers)
    _WORKER.papers_file = papers_file


def _render_in_worker(batch: Batch, papers_file: str | None, spool: str | None) -> RenderedBatch:
    assert _WORKER.setup is not None
    started, started_cpu = time.perf_counter(), time.process_time()
    _read_papers(papers_file)
    _WORKER.papers.update(batch.papers)  # papers of older digests, kept for later batches
    items = render_batch(Batch(batch.payloads), _WORKER.papers, _WORKER.setup, spool=spool)
    return RenderedBatch(items, time.perf_counter() - started, time.process_time() - started_cpu)


def default_processes() -> int:
    """Renderer processes: one per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _remove_stale_papers_files() -> None:
    """Papers files of runs that died before closing their pool (named by their pid)."""
    for path in Path(tempfile.gettempdir()).glob(f"{PAPERS_PREFIX}*-*.pickle"):
        pid = path.name.removeprefix(PAPERS_PREFIX).partition("-")[0]
        if pid.isdigit() and not process_alive(int(pid)):
            path.unlink(missing_ok=True)


class RenderPool:
    """Renders batches on ``processes`` worker processes (or in this one when <= 1).

    The renderers can start before the run's papers are known (:meth:`start`, then
    :meth:`share`): a run starts them while it records its digests, so that their start-up
    (a new interpreter, imports, the templates, the quoted-printable kernel: seconds) is
    not spent while the first batches wait.
    """

    def __init__(
        self,
        setup: RenderSetup,
        papers: dict[int, PaperFields] | None = None,
        *,
        processes: int,
    ) -> None:
        self.setup = setup
        self.papers: dict[int, PaperFields] = {}
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._papers_file: Path | None = None
        if processes > 1:
            _remove_stale_papers_files()
            # spawn, not fork: the parent holds database connections and a heartbeat thread
            self._executor = ProcessPoolExecutor(
                max_workers=processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(setup, os.getpid()),
            )
        if papers is not None:
            self.share(papers)

    def start(self) -> None:
        """Start every renderer process now rather than at the first batches."""
        if self._executor is not None:
            for _ in range(self.processes):  # the executor starts a process per task
                self._executor.submit(_ready)

    def share(self, papers: dict[int, PaperFields]) -> None:
        """The papers the digests show (every renderer holds them from its next batch).
        Once per pool: later batches carry the papers the renderers do not hold."""
        if self._papers_file is not None:
            raise RuntimeError("the renderers already hold the run's papers")
        self.papers = papers
        if self._executor is None:
            return
        # The papers go through a file, pickled once: as an initializer argument they would
        # be pickled per process and written down a pipe that the new process reads only
        # once it has started Python (seconds of this process blocked); with each batch,
        # pickled every time.
        fd, name = tempfile.mkstemp(prefix=f"{PAPERS_PREFIX}{os.getpid()}-", suffix=".pickle")
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(papers, handle, protocol=pickle.HIGHEST_PROTOCOL)
        self._papers_file = Path(name)

    def submit(self, batch: Batch, *, spool: str | None = None) -> Future[RenderedBatch]:
        """Render ``batch``. ``spool``: a directory where renderer processes write each
        message (:attr:`Rendered.path`) rather than send its bytes back; rendering in this
        process ignores it (the bytes are already here)."""
        if self._executor is not None:
            papers_file = str(self._papers_file) if self._papers_file else None
            return self._executor.submit(_render_in_worker, batch, papers_file, spool)
        future: Future[RenderedBatch] = Future()
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            self.papers.update(batch.papers)
            items = render_batch(Batch(batch.payloads), self.papers, self.setup)
            future.set_result(
                RenderedBatch(
                    items, time.perf_counter() - started, time.thread_time() - started_cpu
                )
            )
        except BaseException as exc:
            future.set_exception(exc)
        return future

    @property
    def known_papers(self) -> set[int]:
        """Papers every renderer already holds (a batch need not carry them)."""
        return set(self.papers)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._papers_file is not None:
            self._papers_file.unlink(missing_ok=True)
            self._papers_file = None

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
