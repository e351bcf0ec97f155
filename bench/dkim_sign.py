"""DKIM signing alone: dkimpy's ``dkim.sign`` against ``DkimSigner``, side by side, one core.

    .venv/bin/python bench/dkim_sign.py [--digests 300] [--bits 2048] [--rounds 3]

The messages are ``render_speed.py``'s digests (unsigned wire bytes from
``fastmime.wire_message``). First every message is signed both ways with dkimpy's ``t=`` and
the header lines compared (all must be equal); then each round times both signers over all
messages, in alternating order (the machine is shared: a neighbour's burst then hurts both
alike), as CPU time of the process per signature. dkimpy is given the PEM bytes, as
``sign_message`` gave it before; ``DkimSigner`` parses its key once.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dkim
from render_speed import NOW, digest_views, dkim_options, items_from_papers

from digest.delivery import fastmime
from digest.delivery.message import DKIM_HEADERS, MessageOptions, signer_for
from digest.render.email import EmailRenderer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digests", type=int, default=300)
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    views = digest_views(args.digests, items_from_papers(2000, rng), 20, rng)
    renderer = EmailRenderer()
    unsigned = MessageOptions(
        mail_from="Paper digest <digest@digest.example.org>",
        list_id="Paper digest <digest.example.org>",
    )
    messages = [
        fastmime.wire_message(v, renderer.render(v), options=unsigned, sent_at=NOW).data
        for v in views
    ]
    with tempfile.TemporaryDirectory() as tmp:
        options = dkim_options(unsigned, Path(tmp), bits=args.bits)
        assert options.dkim_private_key is not None
        pem = options.dkim_private_key.read_bytes()
        signer = signer_for(options)
        assert signer is not None
    include = [name.lower().encode() for name in DKIM_HEADERS]

    def dkimpy(message: bytes) -> bytes:
        header: bytes = dkim.sign(
            message,
            b"mail",
            b"digest.example.org",
            pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
        )
        return header

    for message in messages:
        expected = dkimpy(message)
        found = re.search(rb"\bt=(\d+);", expected)
        assert found is not None
        if signer.signature(message, timestamp=int(found.group(1))) != expected:
            sys.exit("DkimSigner's header differs from dkimpy's")
    size = sum(map(len, messages)) / len(messages) / 1024
    print(f"checked: equal headers for all {len(messages)} messages ({size:.1f} KB each), "
          f"{args.bits}-bit key\n")  # fmt: skip

    contenders: dict[str, Callable[[bytes], bytes]] = {
        "dkimpy `dkim.sign`": dkimpy,
        "`DkimSigner` (cryptography)": signer.signature,
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(args.rounds):
        order = list(contenders)
        if round_ % 2:
            order.reverse()
        for name in order:
            sign = contenders[name]
            start = time.process_time()
            for message in messages:
                sign(message)
            times[name].append((time.process_time() - start) / len(messages) * 1000)
    print("| signer | CPU ms per signature (best) | range over rounds | signatures/s (CPU) |")
    print("|---|---|---|---|")
    for name, cpu in times.items():
        best = min(cpu)
        print(f"| {name} | {best:.3f} | {best:.3f}-{max(cpu):.3f} | {1000 / best:,.0f} |")
    old, new = (min(cpu) for cpu in times.values())
    print(f"\nDkimSigner: {old / new:.1f}x less CPU per signature (best rounds)")


if __name__ == "__main__":
    main()
