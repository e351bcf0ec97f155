"""Rough scale check of the lexical ranker: N profiles x M papers, top 10 each.

    .venv/bin/python bench/rank_scale.py [--profiles 100000] [--papers 2000] [--chunk 2048]

Papers are synthesised from the sentences of the real abstracts in
tests/data/ranking/seed_papers.json (so the vocabulary statistics are realistic); profiles
draw 3-8 interests from a Zipf-distributed pool of phrases taken from the real titles, some
with weights, exclusions, required phrases, authors and categories. Prints timings and the
peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import time
from pathlib import Path

from digest.ranking import LexicalRanker, Profile, RankDoc
from digest.ranking.base import Interest

SEEDS = Path(__file__).resolve().parent.parent / "tests" / "data" / "ranking" / "seed_papers.json"
CATEGORIES = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "cs.RO", "stat.ML", "q-bio.BM", "eess.AS"]
SURNAMES = ["Smith", "Wang", "Li", "Zhang", "Müller", "Garcia", "Kim", "Nguyen", "Rossi", "Sato"]


def pseudo_topics(n: int, rng: random.Random) -> list[str]:
    """Made-up two-word topics ("vorka telin"): rare, like real subfield names."""
    syllables = ["ka", "lo", "mi", "ru", "te", "vos", "na", "pel", "dri", "zu", "qua", "sen"]
    word = lambda: "".join(rng.choice(syllables) for _ in range(3))  # noqa: E731
    return [f"{word()} {word()}" for _ in range(n)]


def zipf(n: int) -> list[float]:
    return [1.0 / (rank + 1) ** 0.8 for rank in range(n)]


def synth_papers(n: int, rng: random.Random, topics: list[str]) -> list[RankDoc]:
    seeds = json.loads(SEEDS.read_text(encoding="utf-8"))
    sentences = [s for p in seeds for s in re.split(r"(?<=\.)\s+", p["abstract"]) if len(s) > 30]
    titles = [p["title"] for p in seeds]
    docs = []
    for i in range(n):
        title = " ".join(rng.choice(titles).split(":")[-1].split()[: rng.randint(4, 12)])
        abstract = " ".join(rng.choice(sentences) for _ in range(rng.randint(5, 10)))
        if topics:  # a paper is about one to three (made-up) subfields
            about = rng.choices(topics, zipf(len(topics)), k=rng.randint(1, 3))
            title = f"{about[0]} {title}"
            abstract = f"{abstract} We study {' and '.join(about)}."
        authors = tuple(
            f"{rng.choice('ABCDEFGHJK')}. {rng.choice(SURNAMES)}{rng.randint(0, 300)}"
            for _ in range(rng.randint(1, 6))
        )
        docs.append(
            RankDoc(
                key=f"p{i}",
                title=title,
                abstract=abstract,
                authors=authors,
                categories=tuple(rng.sample(CATEGORIES, rng.randint(1, 3))),
                upvotes=rng.choice([None, 0, 1, 3, 10, 40]),
            )
        )
    return docs


def phrase_pool(size: int, rng: random.Random) -> list[str]:
    seeds = json.loads(SEEDS.read_text(encoding="utf-8"))
    words = [w for p in seeds for w in re.findall(r"[A-Za-z][A-Za-z-]+", p["title"])]
    pool = {" ".join(words[i : i + k]) for k in (1, 2, 3) for i in range(len(words) - k)}
    pool |= {
        "protein folding",
        "graph neural networks",
        "RL",
        "LLM",
        "diffusion models",
        "quantum error correction",
        "speech recognition",
        "RLHF",
        "CoT",
        "LoRA",
    }
    ordered = sorted(pool)
    rng.shuffle(ordered)
    return ordered[:size]


def synth_profiles(n: int, pool: list[str], rng: random.Random, topics: list[str]) -> list[Profile]:
    weights = zipf(len(pool))  # some interests are far more popular than others
    topic_weights = zipf(len(topics))
    profiles = []
    for _ in range(n):
        k = rng.randint(3, 8)
        if topics:  # mostly subfields, some phrases from the real titles
            picked = rng.choices(topics, topic_weights, k=k - k // 4)
            picked += rng.choices(pool, weights, k=k // 4)
        else:
            picked = rng.choices(pool, weights, k=k)
        interests = [Interest(t, rng.choice([1.0, 1.0, 1.0, 2.0, 0.5])) for t in picked]
        if rng.random() < 0.1:
            interests.append(
                Interest(f"{rng.choice(SURNAMES)}{rng.randint(0, 300)}", 1.0, "author")
            )
        if rng.random() < 0.1:
            interests.append(Interest(rng.choice(CATEGORIES), 0.5, "category"))
        excludes = tuple(rng.choices(pool, weights, k=2)) if rng.random() < 0.2 else ()
        required = (rng.choice(pool[:50]),) if rng.random() < 0.05 else ()
        profiles.append(
            Profile(
                tuple(interests),
                excludes,
                required,
                popularity_weight=0.2 if rng.random() < 0.1 else 0.0,
            )
        )
    return profiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--papers", type=int, default=2_000)
    parser.add_argument("--pool", type=int, default=5_000)
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument(
        "--topics",
        type=int,
        default=3_000,
        help="made-up subfields papers and profiles are about (0: only phrases from the 92 "
        "real titles, so nearly every profile matches nearly half of the papers)",
    )
    args = parser.parse_args()
    rng = random.Random(7)
    topics = pseudo_topics(args.topics, rng)
    docs = synth_papers(args.papers, rng, topics)
    profiles = synth_profiles(args.profiles, phrase_pool(args.pool, rng), rng, topics)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ranker = LexicalRanker()
    t0 = time.perf_counter()
    index = ranker.prepare(docs)
    t1 = time.perf_counter()
    picks = ranker.rank(index, profiles, top_n=10, chunk_size=args.chunk)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n_picks = sum(map(len, picks))
    print(
        f"{n_picks / max(len(picks), 1):.1f} picks per profile, "
        f"{sum(len(p.matches) for ps in picks for p in ps) / max(n_picks, 1):.1f} matches each"
    )
    print(f"prepare {len(docs)} papers: {t1 - t0:.2f} s ({len(index.vocab)} features)")
    print(
        f"rank {len(profiles)} profiles: {t2 - t1:.2f} s, {n_picks} picks "
        f"({sum(1 for p in picks if p)} profiles with any)"
    )
    print(f"peak RSS {peak:.0f} MB (after building inputs: {base:.0f} MB)")


if __name__ == "__main__":
    main()
