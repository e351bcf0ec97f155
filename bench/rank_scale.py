"""Scale check of the lexical ranker: 100,000 profiles x 2,000 papers, top 10 each.

    .venv/bin/python bench/rank_scale.py [--profiles 100000] [--papers 2000] [--chunk 2048]
        [--threads N] [--bm25-sample 300] [--semantic]

Inputs come from bench/rank_data.py (papers recombined from the 202 real sample papers,
profiles of 3-8 interests from a realistic vocabulary). The ranker is given an eligibility
mask like the pipeline's (papers inside the window, minus what was delivered). Times
``prepare`` (the paper side) and ``rank`` (all profiles) separately, then a per-profile
``rank_bm25.BM25Okapi`` loop on a sample, extrapolated. Peak RSS is the process's
(``ru_maxrss``), so run it in a fresh process. Before anything is timed, a separate process
makes sure the ranking kernel is compiled into Numba's cache, as ``make install`` does.
``--semantic`` also times the semantic ranker: embedding the papers (cold cache) and ranking
a sample of profiles.
"""

from __future__ import annotations

import argparse
import platform
import random
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from rank_data import synth_papers, synth_profiles

from digest.ranking import Analyzer, LexicalRanker, Profile, RankDoc


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def window_mask(n_profiles: int, n_docs: int, seed: int = 1):  # type: ignore[no-untyped-def]  # returns a NumPy bool array
    """Like pipeline.select_papers: first-seen time after the profile's window start, minus
    a few papers already delivered."""
    rng = np.random.default_rng(seed)
    seen_at = rng.uniform(0, 7, n_docs)
    starts = rng.choice([0.0, 0.0, 0.0, 1.0, 3.0], n_profiles)
    delivered = {int(r): rng.integers(0, n_docs, 5) for r in rng.integers(0, n_profiles, 2000)}

    def eligible(start: int, stop: int) -> npt.NDArray[np.bool_]:
        mask = seen_at[None, :] > starts[start:stop, None]
        for row in range(start, stop):
            if row in delivered:
                mask[row - start, delivered[row]] = False
        return mask

    return eligible


def bm25_loop(docs: Sequence[RankDoc], profiles: Sequence[Profile]) -> tuple[float, float]:
    """(index build seconds, seconds per profile) of the obvious per-profile loop."""
    from rank_bm25 import BM25Okapi  # noqa: PLC0415  # dev dependency, bench only

    analyzer = Analyzer()
    t0 = time.perf_counter()
    bm25 = BM25Okapi([analyzer.terms(f"{d.title} {d.abstract}") for d in docs])
    t1 = time.perf_counter()
    for profile in profiles:
        query = [t for i in profile.interests for t in analyzer.terms(i.text, query=True)]
        scores = bm25.get_scores(query)
        top = np.argsort(-scores, kind="stable")[:10]
        _ = [(int(i), float(scores[i])) for i in top if scores[i] > 0]
    t2 = time.perf_counter()
    return t1 - t0, (t2 - t1) / max(len(profiles), 1)


def semantic(docs: Sequence[RankDoc], profiles: Sequence[Profile]) -> None:
    from digest.ranking.semantic import SemanticRanker, load_model  # noqa: PLC0415 - optional extra, loaded only when asked for

    t0 = time.perf_counter()
    load_model()
    t1 = time.perf_counter()
    ranker = SemanticRanker()
    index = ranker.prepare(docs)
    t2 = time.perf_counter()
    ranker.prepare(docs)
    t3 = time.perf_counter()
    ranker.rank(index, profiles, top_n=10)
    t4 = time.perf_counter()
    print(f"| semantic: load model (torch import included) | {t1 - t0:.1f} s |")
    print(f"| semantic: embed {len(docs)} papers (cold cache) | {t2 - t1:.1f} s |")
    print(f"| semantic: prepare again (cached vectors) | {t3 - t2:.2f} s |")
    print(f"| semantic: rank {len(profiles)} profiles | {t4 - t3:.2f} s |")
    print(f"| semantic: peak RSS | {peak_mb():.0f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=2_000)
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None, help="default: the ranker's")
    parser.add_argument("--bm25-sample", type=int, default=300)
    parser.add_argument("--semantic", action="store_true", help="also time the semantic ranker")
    args = parser.parse_args()
    # What `make install` does: compile the ranking kernel into Numba's disk cache, in another
    # process, so that the timed `rank` below pays what a digest run pays (loading it, ~0.3 s)
    # and not the one-off compilation of a fresh install (~6 s).
    t_warm = time.perf_counter()
    warm_up = "from digest.ranking.lexical import compile_kernel; compile_kernel()"
    subprocess.run([sys.executable, "-c", warm_up], check=True)
    warm = time.perf_counter() - t_warm
    rng = random.Random(7)
    docs = synth_papers(args.papers, rng)
    profiles = synth_profiles(args.profiles, rng)
    eligible = window_mask(len(profiles), len(docs))
    inputs_mb = peak_mb()
    ranker = LexicalRanker(threads=args.threads)
    t0 = time.perf_counter()
    index = ranker.prepare(docs)
    t1 = time.perf_counter()
    picks = ranker.rank(index, profiles, top_n=10, eligible=eligible, chunk_size=args.chunk)
    t2 = time.perf_counter()
    peak = peak_mb()
    explain = sum(len(p.reason()) for row in picks for p in row)  # what record_digest does
    t3 = time.perf_counter()
    sample = profiles[: args.bm25_sample]
    bm25_build, per_profile = bm25_loop(docs, sample)
    n_picks = sum(map(len, picks))
    bm25_total = bm25_build + per_profile * len(profiles)
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"| {len(profiles)} profiles x {len(docs)} papers, top 10 | |")
    print("|---|---|")
    print(f"| kernel in Numba's cache (separate process; compiles if missing) | {warm:.1f} s |")
    print(f"| lexical: prepare papers ({len(index.vocab)} features) | {t1 - t0:.2f} s |")
    print(f"| lexical: rank all profiles (chunk {args.chunk}, threads {ranker.threads}) "
          f"| **{t2 - t1:.2f} s** |")  # fmt: skip
    print(f"| lexical: picks | {n_picks} ({n_picks / len(profiles):.1f} per profile) |")
    print(f"| peak RSS (inputs alone: {inputs_mb:.0f} MB) | **{peak:.0f} MB** |")
    print(f"| reason() of every pick (after rank) | {t3 - t2:.2f} s ({explain} chars) |")
    print(f"| rank-bm25 loop: index + {len(sample)} profiles | {bm25_build:.2f} s + "
          f"{per_profile * 1000:.1f} ms/profile |")  # fmt: skip
    print(f"| rank-bm25 loop extrapolated to {len(profiles)} | {bm25_total:.0f} s |")
    print(f"| ratio rank-bm25 / lexical rank | **{bm25_total / (t2 - t1):.0f}x** |")
    if args.semantic:
        semantic(docs, profiles[:1000])


if __name__ == "__main__":
    main()
