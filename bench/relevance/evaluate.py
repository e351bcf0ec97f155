"""Relevance benchmark: our ranker against two baselines on a hand-labelled set.

    .venv/bin/python bench/relevance/evaluate.py [--json]

Data (all in this directory): ``papers.json``, the 202 distinct papers of the four saved
Hugging Face listing pages (``make_papers.py`` regenerates it); ``profiles.toml``, the
profiles as a subscriber would type them, each with its one-line intent and its split
(``heldout`` profiles were written first and never used for tuning); ``judgments.json``,
graded judgments (2 = what the intent asks for, 1 = related, useful; unjudged = 0) made by
reading each paper against the intent. Methods are described in ``methods.py``.

Metrics, per profile and averaged over the profiles that have relevant papers: nDCG@10
(gain ``2**grade - 1``; the ideal ranking is over the papers the profile's exclusions leave)
and P@5 (share of the first five with grade >= 1; missing picks count as misses). For
off-topic profiles (nothing relevant in the sample) the table shows how many papers each
method returns: the right answer is 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import tomllib
from pathlib import Path

from methods import SEMANTIC_NOTE, BenchProfile, excluded, make_methods

from digest.ranking import LexicalRanker, RankDoc

HERE = Path(__file__).resolve().parent
K = 10


def load() -> tuple[list[RankDoc], list[BenchProfile]]:
    """The papers and the labelled profiles."""
    papers = json.loads((HERE / "papers.json").read_text(encoding="utf-8"))
    docs = [RankDoc(p["key"], p["title"], p["abstract"], upvotes=p["upvotes"]) for p in papers]
    position = {d.key: i for i, d in enumerate(docs)}
    judged = json.loads((HERE / "judgments.json").read_text(encoding="utf-8"))
    spec = tomllib.loads((HERE / "profiles.toml").read_text(encoding="utf-8"))
    profiles = [
        BenchProfile(
            id=p["id"],
            split=p["split"],
            intent=p["intent"],
            keywords=tuple(p["keywords"]),
            exclude=tuple(p.get("exclude", ())),
            offtopic=p.get("kind") == "offtopic",
            grades={position[j["key"]]: j["grade"] for j in judged[p["id"]] if j["grade"] > 0},
        )
        for p in spec["profile"]
    ]
    return docs, profiles


def ndcg(ranked: list[int], grades: dict[int, int], eligible: set[int], k: int = K) -> float:
    """nDCG@k with gain ``2**grade - 1``; 0 when nothing eligible is relevant."""
    dcg = sum((2 ** grades.get(d, 0) - 1) / math.log2(r + 2) for r, d in enumerate(ranked[:k]))
    ideal = sorted((g for d, g in grades.items() if d in eligible), reverse=True)[:k]
    best = sum((2**g - 1) / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / best if best else 0.0


def precision(ranked: list[int], grades: dict[int, int], k: int = 5) -> float:
    """Share of the first ``k`` slots holding a paper of grade >= 1."""
    return sum(1 for d in ranked[:k] if grades.get(d, 0) >= 1) / k


def evaluate() -> dict[str, object]:
    """Run every method on every profile; the numbers the table prints."""
    docs, profiles = load()
    methods = make_methods(docs, K)
    index = LexicalRanker().prepare(docs)
    rows: list[dict[str, object]] = []
    for bp in profiles:
        eligible = set(range(len(docs))) - excluded(index, bp.profile())
        row: dict[str, object] = {"profile": bp.id, "split": bp.split, "offtopic": bp.offtopic}
        for name, method in methods.items():
            ranked = method(bp)
            row[name] = (
                {"returned": len(ranked)}
                if bp.offtopic
                else {
                    "ndcg@10": ndcg(ranked, bp.grades, eligible),
                    "p@5": precision(ranked, bp.grades),
                    "returned": len(ranked),
                }
            )
        rows.append(row)
    return {"methods": list(methods), "rows": rows, "notes": list(SEMANTIC_NOTE)}


def _mean(rows: list[dict[str, object]], method: str, metric: str) -> float:
    values = [row[method][metric] for row in rows]  # type: ignore[index]  # JSON results, shape known
    return sum(values) / len(values) if values else 0.0


def table(result: dict[str, object]) -> str:
    """The markdown table: per profile, then averages (all, then each split)."""
    methods: list[str] = result["methods"]  # type: ignore[assignment]  # JSON results, shape known
    rows: list[dict[str, object]] = result["rows"]  # type: ignore[assignment]  # JSON results, shape known
    labelled = [r for r in rows if not r["offtopic"]]
    head = "| profile | split | " + " | ".join(f"{m} nDCG@10 | {m} P@5" for m in methods) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(methods))]
    for r in labelled:
        cells = [f"{r[m]['ndcg@10']:.3f} | {r[m]['p@5']:.2f}" for m in methods]  # type: ignore[index]  # JSON results, shape known
        lines.append(f"| {r['profile']} | {r['split']} | " + " | ".join(cells) + " |")
    splits = list(dict.fromkeys(str(r["split"]) for r in labelled))
    for label, subset in [("**average**", labelled)] + [
        (f"average, {split}", [r for r in labelled if r["split"] == split]) for split in splits
    ]:
        cells = [
            f"{_mean(subset, m, 'ndcg@10'):.3f} | {_mean(subset, m, 'p@5'):.3f}" for m in methods
        ]
        lines.append(f"| {label} ({len(subset)}) | | " + " | ".join(cells) + " |")
    off = [r for r in rows if r["offtopic"]]
    if off:
        lines += [
            "",
            f"Off-topic profiles (nothing relevant in the sample): papers returned, of {K} "
            "allowed (0 is right).",
            "",
            "| profile | " + " | ".join(methods) + " |",
            "|" + "---|" * (1 + len(methods)),
        ]
        for r in off:
            counts = [str(r[m]["returned"]) for m in methods]  # type: ignore[index]  # JSON results, shape known
            lines.append(f"| {r['profile']} | " + " | ".join(counts) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    result = evaluate()
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
        return
    print(table(result))
    for note in result["notes"]:  # type: ignore[attr-defined]  # JSON shape checked by the code above
        print(f"\nnote: {note}")
    print(f"\n{len(result['rows'])} profiles, {time.perf_counter() - started:.1f} s")  # type: ignore[arg-type]  # a deliberately loose test input


if __name__ == "__main__":
    main()
