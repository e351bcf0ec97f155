"""Hostile listings through ``digest import``: a bad file is one line naming it, never a
traceback; the other files still import; every file is a recorded run (SQLite, PostgreSQL).

The corpus is ``tests/data/hostile/`` (see its README): each file once crashed the import.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Cli
from sqlalchemy import select
from sqlmodel import col

from digest.config.settings import Settings
from digest.sources import imports
from digest.store import db
from digest.store.models import Paper, Run

HOSTILE = Path(__file__).parent / "data" / "hostile"
GOOD = Path(__file__).parent / "data" / "listings" / "hf" / "paper.json"

# file → the error's text (a one-line ListingError), or None: imported with this many papers
OUTCOMES: dict[str, str | int] = {
    "unknown_encoding.xml": "unsupported character encoding 'x-bogus' in the XML declaration",
    "multibyte_encoding.atom.xml": "unsupported character encoding 'shift_jis'",
    "codec_not_text.xml": "unsupported character encoding 'rot13'",
    "enormous_number.json": "a number with more than 4,300 digits",
    "absurd_pubdate.rss.xml": 2,
    "lone_surrogate.json": 1,
    "out_of_range_counts.json": 1,
    "charref_digits.rss.xml": 1,
    "overlong_doi.rss.xml": 1,
    "unclosed_comments.atom.xml": 1,
}


def _runs(settings: Settings) -> list[Run]:
    with db.transaction(settings) as session:
        runs = list(session.execute(select(Run).order_by(col(Run.id))).scalars())
        session.expunge_all()
        return runs


def _papers(settings: Settings) -> dict[str, Paper]:
    with db.transaction(settings) as session:
        papers = {p.key: p for p in session.execute(select(Paper)).scalars()}
        session.expunge_all()
        return papers


def test_the_corpus_covers_every_file() -> None:
    assert sorted(p.name for p in HOSTILE.iterdir() if p.name != "README.md") == sorted(OUTCOMES)


def test_hostile_files_are_one_line_each_and_the_rest_imports(cli: Cli, settings: Settings) -> None:
    files = [HOSTILE / name for name in OUTCOMES]
    result = cli("import", *map(str, files), str(GOOD), "--json", code=1)
    report = json.loads(result.stdout)
    by_name = {Path(f["path"]).name: f for f in report["files"]}
    for name, outcome in OUTCOMES.items():
        got = by_name[name]
        if isinstance(outcome, str):
            assert got["error"].startswith(f"{HOSTILE / name}: "), got
            assert outcome in got["error"] and "\n" not in got["error"]
            assert (got["records"], got["new"]) == (0, 0)
        else:
            assert got["error"] is None, got
            assert (got["records"], got["new"]) == (outcome, outcome)
    assert by_name["paper.json"]["new"] == 1  # the good file after them all
    errors = [o for o in OUTCOMES.values() if isinstance(o, str)]
    assert report["errors"] == len(errors)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == len(errors) and all(line.startswith("error: ") for line in lines)
    assert "Traceback" not in result.output

    runs = _runs(settings)
    assert [Path(r.source or "").name for r in runs] == [*OUTCOMES, "paper.json"]
    for run in runs:
        outcome = OUTCOMES.get(Path(run.source or "").name, 1)
        assert run.status == ("error" if isinstance(outcome, str) else "ok"), run
        assert run.finished_at is not None
        if isinstance(outcome, str):
            assert run.error == by_name[Path(run.source or "").name]["error"]

    papers = _papers(settings)
    broken = papers["arxiv:2410.17245"]
    assert broken.title == "Broken \ufffd Title"
    assert broken.authors == ["Zo\ufffde"] and broken.github_repo is None
    counts = papers["arxiv:2410.17247"]
    assert (counts.upvotes, counts.github_stars, counts.version) == (None, None, None)
    assert {papers["arxiv:2410.17243"].published_at, papers["arxiv:2410.17244"].published_at} == {
        None
    }
    doi = next(p for p in papers.values() if p.title == "A DOI Longer Than Any Key")
    assert doi.doi is None and doi.key.startswith("title:")


def test_undecodable_and_overlong_file_names(cli: Cli, settings: Settings, tmp_path: Path) -> None:
    # A file name that is not UTF-8 (bytes from another system) and a path of 600 characters.
    odd = tmp_path / os.fsdecode(b"caf\xe9.json")
    odd.write_bytes(GOOD.read_bytes())
    deep = tmp_path / ("d" * 250) / ("e" * 250) / ("f" * 90 + ".json")
    deep.parent.mkdir(parents=True)
    deep.write_text('[{"paper": {"id": "2410.17248", "title": "Deep"}}]')
    report = json.loads(cli("import", str(odd), str(deep), "--json").stdout)
    assert [f["new"] for f in report["files"]] == [1, 1]
    assert report["files"][0]["path"].endswith("caf\ufffd.json")
    runs = _runs(settings)
    assert [r.status for r in runs] == ["ok", "ok"]
    assert len(runs[1].source or "") == 500 and (runs[1].source or "").endswith("f" * 90 + ".json")
    first_sources = {p.first_source for p in _papers(settings).values()}
    assert first_sources == {"file:caf\ufffd.json", f"file:{'f' * 90}.json"}


def test_a_bug_in_one_file_costs_only_that_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection into our own reader: an unexpected exception is that file's error."""
    poisoned = tmp_path / "poisoned.json"
    poisoned.write_bytes(GOOD.read_bytes())
    real = imports.read_listing_file

    def reader(path: Path, **kwargs: object) -> object:
        if path == poisoned:
            raise KeyError("a parser bug")
        return real(path, **kwargs)  # type: ignore[arg-type]  # the real signature's keywords

    monkeypatch.setattr(imports, "read_listing_file", reader)
    other = tmp_path / "other.json"
    other.write_text('[{"paper": {"id": "2410.17249", "title": "Other"}}]')
    report = imports.import_files(settings, [poisoned, other], now=datetime.now(UTC))
    assert [f.new for f in report.files] == [0, 1]
    error = report.files[0].error or ""
    assert error.startswith(f"{poisoned}: internal error") and "KeyError: 'a parser bug'" in error
    assert [r.status for r in _runs(settings)] == ["error", "ok"]
