"""``digest import`` and ``digest rank`` through the CLI."""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Cli
from typer.testing import CliRunner

from digest.cli import app
from digest.config.resources import sample_dir
from digest.config.settings import Settings

SEEDS_SHARED = Path(__file__).resolve().parents[2] / "shared" / "seeds"


@pytest.fixture
def seeds(tmp_path: Path) -> list[Path]:
    """The four saved Hugging Face pages, as plain text files."""
    out = []
    for gz in sorted(sample_dir().glob("*.txt.gz")):
        target = tmp_path / gz.name.removesuffix(".gz")
        target.write_bytes(gzip.decompress(gz.read_bytes()))
        out.append(target)
    return out


def test_seed_pages_import_202_new_then_0(cli: Cli, seeds: list[Path]) -> None:
    first = json.loads(cli("import", *map(str, seeds), "--json").stdout)
    assert (first["new"], first["seen"]) == (202, 44)
    assert sum(f["records"] for f in first["files"]) == 246
    assert {f["format"] for f in first["files"]} == {"hf-page"}
    again = json.loads(cli("import", *map(str, seeds), "--json").stdout)
    assert (again["new"], again["seen"]) == (0, 246)


@pytest.mark.skipif(not SEEDS_SHARED.is_dir(), reason="shared/seeds not beside the checkout")
def test_bundled_sample_matches_shared_seeds() -> None:
    shipped = sorted(gzip.decompress(p.read_bytes()) for p in sample_dir().glob("*.txt.gz"))
    originals = sorted(p.read_bytes() for p in SEEDS_SHARED.glob("*.txt"))
    assert shipped == originals


def test_gzip_and_plain_give_the_same_papers(cli: Cli, seeds: list[Path]) -> None:
    gz = sorted(sample_dir().glob("*.txt.gz"))[0]
    first = json.loads(cli("import", str(gz), "--json").stdout)
    assert first["new"] > 0
    again = json.loads(cli("import", str(seeds[0]), "--json").stdout)
    assert again["new"] == 0


def test_malformed_file_is_reported_others_import(
    cli: Cli, seeds: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "daily_papers.json"
    broken.write_text('[{"paper": {"id": "2410.17243", "title": "Breaking the Memory')
    result = cli("import", str(broken), str(seeds[2]), "--json", code=1)
    data = json.loads(result.stdout)
    assert data["errors"] == 1 and data["new"] > 0
    bad = data["files"][0]
    assert bad["new"] == 0 and str(broken) in bad["error"] and "\n" not in bad["error"]
    assert "line 1" in bad["error"]
    # stderr carries the same single line
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")
    # nothing from the broken file was stored; fixing it later imports it fully
    broken.write_text(json.dumps([{"paper": {"id": "2410.17243", "title": "Breaking"}}]))
    assert json.loads(cli("import", str(broken), "--json").stdout)["new"] == 1


def test_missing_file_and_unknown_format(cli: Cli, tmp_path: Path) -> None:
    result = cli("import", str(tmp_path / "nope.json"), code=1)
    assert "nope.json" in result.output
    garbage = tmp_path / "noise.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    assert "noise.bin" in cli("import", str(garbage), code=1).output
    # A format that does not exist is a wrong command line: exit 2.
    assert "unknown format" in cli("import", str(garbage), "--format", "pdf", code=2).output


def test_oversize_file_refused(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = make_settings()
    monkeypatch.setenv("DIGEST_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DIGEST_MAX_LISTING_BYTES", "2048")
    big = tmp_path / "big.json"
    big.write_text(
        json.dumps([{"paper": {"id": f"2410.{i:05d}", "title": "t" * 50}} for i in range(100)])
    )
    result = CliRunner().invoke(app, ["import", str(big)])
    assert result.exit_code == 1 and "big.json" in result.output


def test_rank_command(seeds: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    # duplicates across files merged: two copies of the same page give the same ranking
    copy = tmp_path / "copy.txt"
    shutil.copy(seeds[3], copy)
    result = runner.invoke(
        app,
        [
            "rank",
            *map(str, seeds),
            str(copy),
            "-k",
            "reinforcement learning",
            "-k",
            "pre-training",
            "-x",
            "robot",
            "--top",
            "5",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    picks = json.loads(result.stdout)
    assert 0 < len(picks) <= 5
    assert len({p["key"] for p in picks}) == len(picks)
    for pick in picks:
        assert {"title", "key", "score", "matched"} <= set(pick)
        assert pick["matched"] and "robot" not in pick["title"].lower()
    assert [p["score"] for p in picks] == sorted((p["score"] for p in picks), reverse=True)
    assert not (tmp_path / "xdg").exists()  # touched no store
    nothing = runner.invoke(app, ["rank", str(seeds[0]), "-k", "cryo-EM microscopy", "--json"])
    assert nothing.exit_code == 0 and json.loads(nothing.stdout) == []
