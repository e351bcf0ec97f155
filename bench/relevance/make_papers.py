"""Regenerate ``papers.json``: the 202 distinct papers of the four saved listing pages.

    .venv/bin/python bench/relevance/make_papers.py [SEEDS_DIR]

The labelled set is judged against this file, so it is committed and the evaluation does not
need the seed pages. Papers are keyed by their canonical key (``record.key``), in the order
the pages list them; duplicates across pages are merged the way the store merges them.
``page`` is the first page (0-3, in file name order) that lists the paper: when a reader
would first have seen it (the feedback benchmark, ``feedback.py``, splits on it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from digest.parsers import read_listing_file
from digest.store.papers import merge_records

HERE = Path(__file__).resolve().parent
DEFAULT_SEEDS = Path("/work/shared/seeds")


def main(seeds: Path) -> None:
    """Parse every ``*.txt`` page of ``seeds`` and write ``papers.json`` next to this file."""
    records = []
    first_page: dict[str, int] = {}
    for number, page in enumerate(sorted(seeds.glob("*.txt"))):
        listed = read_listing_file(page).records
        records.extend(listed)
        for record in listed:
            first_page.setdefault(record.key, number)
    papers = [
        {
            "key": r.key,
            "title": r.title,
            "abstract": r.abstract,
            "upvotes": r.upvotes,
            "page": first_page[r.key],
        }
        for r in merge_records(records).values()
    ]
    out = HERE / "papers.json"
    out.write_text(json.dumps(papers, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(papers)} papers -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SEEDS)
