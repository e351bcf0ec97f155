"""Per-message cost of turning a digest view into wire bytes: templates and MIME, one core.

    .venv/bin/python bench/render_speed.py [--digests 2000] [--papers 2000] [--items 20]
        [--repeat 3] [--processes 2] [--dkim] [--no-check] [--baseline REV [--rounds 3]]

Inputs: ``--papers`` papers recombined from the bundled sample listings
(``rank_data.synth_papers``) as the store would show them (arXiv-style links, a code link on
a third, dates, upvotes), and ``--digests`` weekly digests of ``--items`` papers drawn at
random, for subscribers with profiles from ``rank_data.synth_profiles``: each item's "why"
names one or two of its subscriber's interests, one name in ten is non-ASCII, one in ten
missing. Every item carries its signed "more like this" / "less like this" links, as in
production (a secret key is set). Nothing touches a database or the disk: this is the pure
part a worker process runs.

Timed, each over all digests, per message: CPU time of the process (best and range of
``--repeat`` passes; the machine is shared, and CPU time is what a busy neighbour disturbs
least) and the best wall time:

- render, caches cleared per message: ``EmailRenderer.render`` with the per-paper display
  cache and the snippet-wrapping cache emptied before each digest, which is the work the
  renderer did before those caches existed;
- render: the same call with the caches as a run has them;
- reference MIME: ``message_bytes(add_dkim_signature(build_message(…)))``;
- fast MIME: ``fastmime.wire_message`` (its caches as a run has them);
- render + fast MIME: both, per digest; and the reference pair before it (render with
  caches cleared + reference MIME);
- **worker path**: ``renderpool.render_batch`` over the digests as compact payloads, in
  batches of 100: exactly what a renderer process does per batch (payload → view with
  signed vote links → templates → wire bytes).

``--baseline REV`` times the worker path of this tree and of the commit ``REV`` (its
``digest/`` and ``templates/`` exported with ``git archive``) side by side: ``--rounds``
alternating child processes each, same inputs, CPU time per message, and a hash of every
message's bytes to show both trees send the same ones.

``--processes N`` (default 2) then runs render + fast MIME in N worker processes at once,
each over its share of the digests, twice (the first pass fills its caches, as a fresh
worker would); the second pass gives the combined throughput in messages per second.

The first pass of the warm rows starts with empty caches (a fresh worker process); its time
is printed as "first pass". Before timing, every digest's fast bytes are compared with the
reference bytes (``--no-check`` skips it; with ``--dkim`` the signatures' ``t=`` can differ,
so the comparison then skips the DKIM-Signature line).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rank_data import synth_papers, synth_profiles

from digest.delivery import fastmime
from digest.delivery.message import MessageOptions, add_dkim_signature, build_message
from digest.delivery.renderpool import Rendered, RenderSetup, render_batch
from digest.delivery.wire import message_bytes
from digest.render import display, email
from digest.render.assemble import ViewOptions
from digest.render.batch import Batch, DigestPayload, PaperFields, digest_view
from digest.render.email import EmailRenderer, RenderedEmail
from digest.render.views import DigestView

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"]
ACCENTED = ["Zoë Ångström", "Jürgen Müller", "李雷", "Søren Kierkegaard", "José Núñez"]
BASE_URL = "https://digest.example.org"
VIEWS = ViewOptions(BASE_URL, secret_key="bench secret key, 32 characters.")  # vote links on
BATCH = 100  # payloads per render batch (the pipeline's batches are of this order)


def papers_for(n: int, rng: random.Random) -> dict[int, PaperFields]:
    """``n`` papers as the store holds them (arXiv-style links, a code link on a third)."""
    papers = {}
    for i, doc in enumerate(synth_papers(n, rng)):
        arxiv = f"2411.{10000 + i:05d}"
        papers[i + 1] = PaperFields(
            id=i + 1,
            key=f"arxiv:{arxiv}",
            title=doc.title,
            abstract=doc.abstract,
            authors=doc.authors,
            url=None,  # the view links the arXiv abstract page
            arxiv_id=arxiv,
            doi=None,
            pdf_url=f"https://arxiv.org/pdf/{arxiv}",
            github_repo=f"https://github.com/lab{i % 97}/project-{i}" if i % 3 == 0 else None,
            published_at=NOW - timedelta(days=rng.randint(1, 7), hours=rng.randint(0, 23)),
            listed_at=None,
            upvotes=doc.upvotes,
        )
    return papers


def payloads_for(
    count: int, papers: dict[int, PaperFields], items: int, rng: random.Random
) -> list[DigestPayload]:
    """``count`` subscribers' digests of ``items`` papers each (see the module docstring)."""
    payloads = []
    ids = list(papers)
    for n, profile in enumerate(synth_profiles(count, rng)):
        interests = tuple(i.text for i in profile.interests)
        picked = []
        for paper_id in rng.sample(ids, items):
            matched = tuple(rng.sample(interests, min(len(interests), rng.choice((1, 1, 2)))))
            fields = rng.choice(("title", "abstract", "title, abstract"))
            reason = "matched " + "; ".join(f"\u201c{m}\u201d ({fields})" for m in matched)
            picked.append((paper_id, round(rng.random(), 6), reason, matched))
        name = rng.choice((None, rng.choice(ACCENTED), *[rng.choice(NAMES)] * 8))
        payloads.append(
            DigestPayload(
                digest_id=n + 1,
                subscriber_id=n + 1,
                key=f"{n + 1}:weekly:2026-W48",
                email=f"reader{n + 1}@example.org",
                name=name,
                token=base64.urlsafe_b64encode(rng.randbytes(24)).decode(),
                period_label="week of 23 Nov 2026",
                generated_at=NOW,
                items=tuple(picked),
                interests=interests,
            )
        )
    return payloads


def bench_inputs(args: argparse.Namespace) -> tuple[dict[int, PaperFields], list[DigestPayload]]:
    rng = random.Random(args.seed)
    papers = papers_for(args.papers, rng)
    return papers, payloads_for(args.digests, papers, args.items, rng)


def digest_views(args: argparse.Namespace) -> list[DigestView]:
    """The views a worker builds from the payloads (signed vote links included)."""
    papers, payloads = bench_inputs(args)
    return [digest_view(payload, papers, options=VIEWS) for payload in payloads]


def clear_caches() -> None:
    """Empty every cache the fast paths keep (as in a fresh worker process)."""
    display.paper_display.cache_clear()
    email.clear_filter_caches()
    fastmime.clear_caches()


def dkim_options(base: MessageOptions, directory: Path, *, bits: int = 2048) -> MessageOptions:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415 - only --dkim
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415 - only --dkim

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    path = directory / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return MessageOptions(
        mail_from=base.mail_from,
        list_id=base.list_id,
        unsubscribe_mailto=base.unsubscribe_mailto,
        dkim_selector="mail",
        dkim_domain="digest.example.org",
        dkim_private_key=path,
    )


def without_signature(data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    kept = [line for line in head.split(b"\r\n") if not line.startswith(b"DKIM-Signature:")]
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


def check(views: Sequence[DigestView], renderer: EmailRenderer, options: MessageOptions) -> None:
    """Every digest's fast bytes equal the reference bytes (and cold render == warm)."""
    clear_caches()
    for view in views:
        rendered = renderer.render(view)
        reference = message_bytes(
            add_dkim_signature(build_message(view, rendered, options=options, sent_at=NOW), options)
        )
        fast = fastmime.wire_message(view, rendered, options=options, sent_at=NOW).data
        if options.signs:
            reference, fast = without_signature(reference), without_signature(fast)
        if fast != reference:
            sys.exit(f"fast bytes differ from the reference for digest {view.key}")
    print(f"checked: fast bytes == reference bytes for all {len(views)} digests")


def render_setup(options: MessageOptions) -> RenderSetup:
    return RenderSetup(
        templates_dir=None, site_name="Paper digest", views=VIEWS, message=options, sent_at=NOW
    )


def worker_path(
    papers: dict[int, PaperFields], payloads: Sequence[DigestPayload], setup: RenderSetup
) -> list[bytes]:
    """``render_batch`` over the payloads in batches of :data:`BATCH`: each message's bytes."""
    out = []
    for start in range(0, len(payloads), BATCH):
        for item in render_batch(Batch(list(payloads[start : start + BATCH])), papers, setup):
            if not isinstance(item, Rendered):
                sys.exit(f"digest {item.digest_id} failed to render: {item.error}")
            out.append(item.data)
    return out


def timed(label: str, run: Callable[[], None], count: int, repeat: int, *, cold: bool) -> None:
    """CPU and wall time per message over ``repeat`` passes (best, range); with ``cold`` the
    first pass starts with empty caches and its CPU time is shown apart."""
    if cold:
        clear_caches()
    cpu, wall = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        cpu.append((time.process_time() - start_cpu) / count * 1000)
        wall.append((time.perf_counter() - start) / count * 1000)
    first = f"{cpu[0]:.3f}" if cold else ""
    best = min(cpu)
    print(
        f"| {label} | {best:.3f} | {best:.3f}-{max(cpu):.3f} | {first} | {min(wall):.3f} "
        f"| {1000 / best:,.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digests", type=int, default=2000)
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dkim", action="store_true", help="sign with a 2048-bit RSA key")
    parser.add_argument("--no-check", action="store_true", help="skip the byte comparison")
    parser.add_argument("--processes", type=int, default=2, help="0: no multi-process run")
    parser.add_argument(
        "--baseline", metavar="REV", help="time the worker path of REV and of this tree"
    )
    parser.add_argument("--rounds", type=int, default=3, help="child processes per tree")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # a child
    args = parser.parse_args()
    if args.measure:
        measure(args)
        return
    if args.baseline:
        side_by_side(args)
        return

    views = digest_views(args)
    renderer = EmailRenderer()
    options = MessageOptions(
        mail_from="Paper digest <digest@digest.example.org>",
        list_id="Paper digest <digest.example.org>",
        unsubscribe_mailto="unsubscribe@digest.example.org",
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.dkim:
            options = dkim_options(options, Path(tmp))
        if not args.no_check:
            check(views, renderer, options)
        clear_caches()
        rendered = [renderer.render(v) for v in views]
        size = sum(len(fastmime.wire_message(v, r, options=options, sent_at=NOW).data)
                   for v, r in zip(views, rendered, strict=True)) / len(views)  # fmt: skip
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}; {len(views)} digests of {args.items} "
              f"items from {args.papers} papers, {size / 1024:.1f} KB per message, "
              f"DKIM {'on' if options.signs else 'off'}\n")  # fmt: skip
        print("| per message, one process | CPU ms | CPU range | first pass CPU | wall ms "
              "| msg/s (CPU) |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        count, repeat = len(views), args.repeat

        def render_cleared() -> None:
            for view in views:
                clear_caches()
                renderer.render(view)

        def render() -> None:
            for view in views:
                renderer.render(view)

        def reference_mime() -> None:
            for view, r in zip(views, rendered, strict=True):
                message = build_message(view, r, options=options, sent_at=NOW)
                message_bytes(add_dkim_signature(message, options))

        def fast_mime() -> None:
            for view, r in zip(views, rendered, strict=True):
                fastmime.wire_message(view, r, options=options, sent_at=NOW)

        def both() -> None:
            for view in views:
                out: RenderedEmail = renderer.render(view)
                fastmime.wire_message(view, out, options=options, sent_at=NOW)

        def reference_both() -> None:
            for view in views:
                clear_caches()
                message = build_message(view, renderer.render(view), options=options, sent_at=NOW)
                message_bytes(add_dkim_signature(message, options))

        timed("render, caches cleared per message", render_cleared, count, repeat, cold=False)
        timed("render", render, count, repeat, cold=True)
        timed("reference MIME (`email`)", reference_mime, count, repeat, cold=False)
        timed("fast MIME (`wire_message`)", fast_mime, count, repeat, cold=True)
        timed("reference render + reference MIME", reference_both, count, repeat, cold=False)
        timed("render + fast MIME", both, count, repeat, cold=True)
        papers, payloads = bench_inputs(args)
        setup = render_setup(options)
        timed(
            "**worker path (`render_batch`)**",
            lambda: worker_path(papers, payloads, setup) and None,
            count,
            repeat,
            cold=True,
        )
    if args.processes:
        in_processes(args, options)


def measure(args: argparse.Namespace) -> None:
    """A ``--baseline`` child: time the worker path in this fresh process, print JSON."""
    import digest  # noqa: PLC0415 - to say which tree this child runs

    options = MessageOptions(
        mail_from="Paper digest <digest@digest.example.org>",
        list_id="Paper digest <digest.example.org>",
        unsubscribe_mailto="unsubscribe@digest.example.org",
    )
    papers, payloads = bench_inputs(args)
    setup = render_setup(options)
    cpu = []
    data: list[bytes] = []
    for _ in range(args.repeat):
        start = time.process_time()
        data = worker_path(papers, payloads, setup)
        cpu.append((time.process_time() - start) / len(payloads) * 1000)
    digest_of = hashlib.sha256()
    for message in data:
        digest_of.update(hashlib.sha256(message).digest())
    print(json.dumps({"cpu": cpu, "bytes": digest_of.hexdigest(), "tree": digest.__file__}))


def export_tree(rev: str, into: Path) -> None:
    """``digest/`` and ``templates/`` of commit ``rev`` of this repository, into ``into``."""
    repo = Path(__file__).resolve().parent.parent
    try:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", rev, "digest", "templates"],
            check=True,
            capture_output=True,
        ).stdout
    except subprocess.CalledProcessError as exc:
        sys.exit(f"cannot export {rev}: {exc.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def side_by_side(args: argparse.Namespace) -> None:
    """The worker path of ``--baseline`` and of this tree, alternating child processes."""
    here = Path(__file__).resolve().parent
    flags = [
        f"--{name}={getattr(args, name)}"
        for name in ("digests", "papers", "items", "repeat", "seed")
    ]
    with tempfile.TemporaryDirectory() as tmp:
        export_tree(args.baseline, Path(tmp))
        trees = {f"baseline {args.baseline}": tmp, "this tree": str(here.parent)}
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": os.pathsep.join((tree, str(here)))}
                child = subprocess.run(
                    [sys.executable, __file__, "--measure", *flags],
                    check=False,
                    capture_output=True,
                    text=True,
                    env=env,
                )
                if child.returncode != 0:  # e.g. a commit without renderpool.render_batch
                    last = (child.stderr.strip().splitlines() or ["no output"])[-1]
                    sys.exit(f"the {name} child failed: {last}")
                results[name].append(json.loads(child.stdout))
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}; worker path "
        f"(`render_batch`, vote links on), {args.digests} digests of {args.items} items from "
        f"{args.papers} papers; {args.rounds} alternating child processes per tree, "
        f"{args.repeat} passes each (the first with empty caches)\n"
    )
    print(
        "| tree | CPU ms/msg, best | median of processes' best | first pass | msg/s (CPU, best) |"
    )
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        bests = sorted(min(run["cpu"]) for run in runs)
        first = min(run["cpu"][0] for run in runs)
        print(
            f"| {name} | {bests[0]:.3f} | {bests[len(bests) // 2]:.3f} | {first:.3f} "
            f"| {1000 / bests[0]:,.0f} |"
        )
    hashes = {run["bytes"] for runs in results.values() for run in runs}
    print(
        "\nmessages: "
        + (
            "byte-identical in both trees"
            if len(hashes) == 1
            else "DIFFERENT BYTES between the trees"
        )
    )
    if len(hashes) != 1:
        sys.exit(1)


_BARRIER: Any = None


def _start_worker(barrier: Any) -> None:
    global _BARRIER  # noqa: PLW0603 - one barrier per worker process, set by the pool
    _BARRIER = barrier


def _worker(job: tuple[argparse.Namespace, MessageOptions, int, int]) -> tuple[int, float, float]:
    """One worker's share: (messages, first pass seconds, second pass seconds)."""
    args, options, index, processes = job
    mine = digest_views(args)[index::processes]
    renderer = EmailRenderer()
    passes = []
    for _ in range(2):
        _BARRIER.wait()
        start = time.perf_counter()
        for view in mine:
            fastmime.wire_message(view, renderer.render(view), options=options, sent_at=NOW)
        passes.append(time.perf_counter() - start)
    return len(mine), passes[0], passes[1]


def in_processes(args: argparse.Namespace, options: MessageOptions) -> None:
    """Render + fast MIME in ``--processes`` workers at once (see the module docstring)."""
    count = args.processes
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(count)
    with context.Pool(count, initializer=_start_worker, initargs=(barrier,)) as pool:
        results = pool.map(_worker, [(args, options, i, count) for i in range(count)])
    total = sum(n for n, _, _ in results)
    first = max(t for _, t, _ in results)
    second = max(t for _, _, t in results)
    print(
        f"\n{count} processes, render + fast MIME, {total} digests: first pass "
        f"{total / first:,.0f} msg/s, second pass {total / second:,.0f} msg/s (wall)"
    )


if __name__ == "__main__":
    main()
