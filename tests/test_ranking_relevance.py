"""The labelled relevance set in bench/relevance is well formed, and the lexical ranker beats
both baselines on it (the numbers themselves are in docs/benchmarks.md)."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "relevance"


@pytest.fixture(scope="module")
def evaluate() -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        import evaluate  # noqa: PLC0415 - a script directory, importable only from here

        yield evaluate
    finally:
        sys.path.remove(str(BENCH))


def test_labelled_set_is_well_formed() -> None:
    papers = json.loads((BENCH / "papers.json").read_text(encoding="utf-8"))
    keys = {p["key"] for p in papers}
    assert len(papers) == len(keys) == 202
    profiles = tomllib.loads((BENCH / "profiles.toml").read_text(encoding="utf-8"))["profile"]
    judgments = json.loads((BENCH / "judgments.json").read_text(encoding="utf-8"))
    labelled = [p for p in profiles if p.get("kind") != "offtopic"]
    assert len(labelled) >= 12
    splits = {
        "tune",
        "heldout",
        "fresh",
        "fresh2",
        "fresh3",
        "fresh4",
        "fresh5",
        "fresh6",
        "fresh7",
    }
    assert {p["split"] for p in labelled} == splits
    for profile in profiles:
        assert profile["intent"] and 1 <= len(profile["keywords"]) <= 6
        graded = judgments[profile["id"]]
        assert all(j["key"] in keys and j["grade"] in (1, 2) for j in graded)
        assert (profile.get("kind") == "offtopic") == (not graded)


def test_lexical_beats_both_baselines(evaluate: Any) -> None:
    result = evaluate.evaluate()
    rows = [r for r in result["rows"] if not r["offtopic"]]

    def mean(method: str, metric: str) -> float:
        return sum(r[method][metric] for r in rows) / len(rows)

    for metric in ("ndcg@10", "p@5"):
        assert mean("lexical", metric) > mean("bm25s", metric), metric
        assert mean("lexical", metric) > mean("substring", metric), metric
    # The lead measured in docs/benchmarks.md (ninth round: +0.041 over all 88); a floor
    # a little under it, so a change that gives most of it back fails here.
    assert mean("lexical", "ndcg@10") - mean("bm25s", "ndcg@10") >= 0.03
    # A digest with at least one match is completed to its ten slots when anything in the
    # sample reaches the completion floor (4 of 88 labelled profiles stay short; the
    # fourth, developmental-learning, since "human-like" counts only whole: ninth round).
    assert sum(r["lexical"]["returned"] < 10 for r in rows) <= 4
    # "Nothing relevant this week" is detected, not padded.
    assert all(r["lexical"]["returned"] == 0 for r in result["rows"] if r["offtopic"])
