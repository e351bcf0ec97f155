"""Feedback benchmark: does rating papers make the next digests better?

    .venv/bin/python bench/relevance/feedback.py [--json] [--history N] [--rate N] [--semantic]

A simulated reader, per labelled profile of ``profiles.toml``: the papers of the first
listing pages (``page`` < ``--history``, default 2, in ``papers.json``; pages 0-1 hold 131
of the 202 papers) are ranked for the profile as one week's digest, and the reader rates
its top ``--rate`` (default 20): up when ``judgments.json`` grades the paper relevant (1 or
2), down otherwise. The later pages (71 papers) are then ranked as the next week's, once
with the bare profile and once with the ratings, each week indexed on its own papers as a
digest run does; the rated papers are not among them. Reported per profile and on
average: nDCG@10 and P@5 (as in ``evaluate.py``) over the later pages, with and without
feedback. Profiles with nothing relevant on the later pages have no nDCG and are listed
apart; off-topic ones must still get nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from typing import Any

from evaluate import HERE, load, ndcg, precision
from methods import excluded

from digest.ranking import LexicalRanker, RankDoc, Ranker, Rated, get_ranker

K = 10


def pages() -> list[int]:
    papers = json.loads((HERE / "papers.json").read_text(encoding="utf-8"))
    return [int(p["page"]) for p in papers]


def run(history_pages: int = 2, rate: int = 20, *, semantic: bool = False) -> dict[str, Any]:
    """Every labelled profile's later-page numbers with and without the simulated ratings."""
    docs, profiles = load()
    page = pages()
    early = [i for i, p in enumerate(page) if p < history_pages]
    later = [i for i, p in enumerate(page) if p >= history_pages]
    ranker: Ranker = get_ranker("semantic") if semantic else LexicalRanker()
    early_index = ranker.prepare([docs[i] for i in early])
    later_index = ranker.prepare([docs[i] for i in later])
    rows = []
    for bp in profiles:
        profile = bp.profile()
        [shown] = ranker.rank(early_index, [profile], top_n=rate)
        rated = tuple(
            Rated(_plain(docs[early[p.index]]), 1 if bp.grades.get(early[p.index], 0) else -1)
            for p in shown
        )
        rated_profile = replace(profile, rated=rated)
        plain, learned = ranker.rank(later_index, [profile, rated_profile], top_n=K)
        grades = {j: bp.grades[i] for j, i in enumerate(later) if i in bp.grades}
        eligible = set(range(len(later))) - excluded(_lexical(later_index), profile)
        row: dict[str, Any] = {
            "profile": bp.id,
            "split": bp.split,
            "offtopic": bp.offtopic,
            "rated_up": sum(r.vote > 0 for r in rated),
            "rated_down": sum(r.vote < 0 for r in rated),
            "relevant_later": sum(1 for j in grades if j in eligible),
        }
        for name, picks in (("without", plain), ("with", learned)):
            ranked = [p.index for p in picks]
            row[name] = {
                "ndcg@10": ndcg(ranked, grades, eligible),
                "p@5": precision(ranked, grades),
                "returned": len(ranked),
                "owed_to_feedback": sum(
                    1 for p in picks if all(m.evidence == "liked" for m in p.matches)
                ),
            }
        rows.append(row)
    return {"history_pages": history_pages, "rate": rate, "ranker": ranker.name, "rows": rows}


def _lexical(prepared: Any) -> Any:
    """The lexical index (the semantic ranker's is inside its own)."""
    return getattr(prepared, "lexical", prepared)


def _plain(doc: RankDoc) -> RankDoc:
    """A rated paper as the store would give it back (no upvotes needed)."""
    return RankDoc(doc.key, doc.title, doc.abstract, doc.authors, doc.categories)


def table(result: dict[str, Any]) -> str:
    rows = result["rows"]
    scored = [r for r in rows if not r["offtopic"] and r["relevant_later"]]
    lines = [
        "| profile | split | rated up / down | nDCG@10 without | with | change | P@5 without "
        "| with | picks owed to feedback alone |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in scored:
        a, b = r["without"], r["with"]
        lines.append(
            f"| {r['profile']} | {r['split']} | {r['rated_up']} / {r['rated_down']} "
            f"| {a['ndcg@10']:.3f} | {b['ndcg@10']:.3f} | {b['ndcg@10'] - a['ndcg@10']:+.3f} "
            f"| {a['p@5']:.2f} | {b['p@5']:.2f} | {b['owed_to_feedback']} |"
        )

    def mean(name: str, metric: str) -> float:
        return sum(r[name][metric] for r in scored) / len(scored) if scored else 0.0

    lines.append(
        f"| **average** ({len(scored)}) | | | {mean('without', 'ndcg@10'):.3f} "
        f"| {mean('with', 'ndcg@10'):.3f} "
        f"| {mean('with', 'ndcg@10') - mean('without', 'ndcg@10'):+.3f} "
        f"| {mean('without', 'p@5'):.3f} | {mean('with', 'p@5'):.3f} | |"
    )
    worse = [r for r in scored if r["with"]["ndcg@10"] < r["without"]["ndcg@10"] - 0.05]
    better = [r for r in scored if r["with"]["ndcg@10"] > r["without"]["ndcg@10"]]
    same = [r for r in scored if r["with"]["ndcg@10"] == r["without"]["ndcg@10"]]
    lines += [
        "",
        f"Better: {len(better)}, unchanged: {len(same)}, "
        f"worse: {len(scored) - len(better) - len(same)}; "
        f"worse by more than 0.05: {', '.join(r['profile'] for r in worse) or 'none'}.",
    ]
    apart = [r for r in rows if r["offtopic"] or not r["relevant_later"]]
    if apart:
        lines.append(
            "Without relevant papers on the later pages (papers returned without / with "
            "feedback): "
            + ", ".join(
                f"{r['profile']} {r['without']['returned']} / {r['with']['returned']}"
                for r in apart
            )
            + "."
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    parser.add_argument("--history", type=int, default=2, help="pages rated (default 2)")
    parser.add_argument("--rate", type=int, default=20, help="papers rated (default 20)")
    parser.add_argument("--semantic", action="store_true", help="the semantic ranker (extra)")
    args = parser.parse_args()
    started = time.perf_counter()
    result = run(args.history, args.rate, semantic=args.semantic)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return
    print(table(result))
    print(f"\n{len(result['rows'])} profiles, {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
