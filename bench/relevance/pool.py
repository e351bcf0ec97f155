"""Judging aid: the papers each method ranks in its top ``k`` that are not judged yet.

    .venv/bin/python bench/relevance/pool.py [PROFILE_ID ...] [--k 30]

The labelled set was built by reading, for every profile, the union of the top 30 of every
method (plus papers found by browsing all 202) against the profile's intent; this prints
what a new profile or a changed method would add to that pool, to be read and graded in
``judgments.json`` (leaving a paper out means grade 0).
"""

from __future__ import annotations

import argparse

from evaluate import load
from methods import make_methods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="*", help="profile ids (default: all)")
    parser.add_argument("--k", type=int, default=30)
    args = parser.parse_args()
    docs, profiles = load()
    methods = make_methods(docs, args.k)
    for bp in profiles:
        if args.profiles and bp.id not in args.profiles:
            continue
        pool: dict[int, list[str]] = {}
        for name, method in methods.items():
            for i in method(bp):
                pool.setdefault(i, []).append(name)
        unjudged = sorted(i for i in pool if i not in bp.grades)
        print(f"## {bp.id}: {bp.intent}\n   {len(pool)} pooled, {len(unjudged)} unjudged")
        for i in unjudged:
            print(f"   [{i}] {docs[i].title}  ({', '.join(pool[i])})")


if __name__ == "__main__":
    main()
