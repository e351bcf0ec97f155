"""``digest subscribers …`` through Typer's runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Cli


def test_add_show_json(cli: Cli) -> None:
    cli(
        "subscribers",
        "add",
        "Ada@Example.ORG",
        "--name",
        "Ada",
        "-k",
        "reinforcement learning",
        "-k",
        "RLHF^2",
        "-x",
        "survey",
        "--frequency",
        "daily",
        "--max-items",
        "7",
        "--timezone",
        "Europe/London",
    )
    info = cli.json("subscribers", "show", "ada@example.org")
    assert info["email"] == "ada@example.org"
    assert info["status"] == "active"
    assert info["keywords"] == ["reinforcement learning", "RLHF^2"]
    assert info["excludes"] == ["survey"]
    assert info["frequency"] == "daily"
    assert info["max_items"] == 7
    token = info["feed_urls"]["atom"].rsplit("/", 1)[1].removesuffix(".atom")
    assert len(token) >= 22  # at least 128 bits in urlsafe base64
    assert info["feed_urls"] == {
        "atom": f"https://digest.example.org/feeds/{token}.atom",
        "rss": f"https://digest.example.org/feeds/{token}.rss",
        "json": f"https://digest.example.org/feeds/{token}.json",
    }
    assert info["unsubscribe_url"] == f"https://digest.example.org/unsubscribe/{token}"
    assert info["manage_url"] == f"https://digest.example.org/manage/{token}"


@pytest.mark.parametrize(
    "address", ["not-an-email", "a@b", "ada@@example.org", "ada@example.org\r\nBcc: x@y.org", ""]
)
def test_invalid_email_is_one_line_error_and_changes_nothing(cli: Cli, address: str) -> None:
    result = cli("subscribers", "add", address, "-k", "diffusion", code=1)
    output = result.output.strip()
    assert output.startswith("error:") and "\n" not in output
    assert cli.json("subscribers", "list") == []


def test_duplicate_is_refused(cli: Cli) -> None:
    cli("subscribers", "add", "ada@example.org", "-k", "diffusion")
    result = cli("subscribers", "add", "ADA@example.org", "-k", "other", code=1)
    assert "already exists" in result.output
    info = cli.json("subscribers", "show", "ada@example.org")
    assert isinstance(info, dict) and info["keywords"] == ["diffusion"]


def test_bad_profile_is_refused(cli: Cli) -> None:
    result = cli("subscribers", "add", "ada@example.org", "-k", "diffusion^zero", code=1)
    assert "error:" in result.output
    cli("subscribers", "add", "ada@example.org", code=1)  # no interests at all
    assert cli.json("subscribers", "list") == []


def test_edit_pause_resume_remove(cli: Cli) -> None:
    cli("subscribers", "add", "ada@example.org", "-k", "diffusion", "-k", "GAN")
    cli(
        "subscribers",
        "edit",
        "ada@example.org",
        "--add-keyword",
        "world models",
        "--remove-keyword",
        "GAN",
        "--add-exclude",
        "medical",
        "--weekday",
        "friday",
        "--hour",
        "7",
    )
    info = cli.json("subscribers", "show", "ada@example.org")
    assert info["keywords"] == ["diffusion", "world models"]
    assert info["excludes"] == ["medical"]
    assert (info["weekday"], info["hour"]) == ("friday", 7)
    cli("subscribers", "edit", "ada@example.org", "--remove-keyword", "nope", code=1)
    cli("subscribers", "edit", "ada@example.org", "--timezone", "Mars/Base", code=1)
    cli("subscribers", "pause", "ada@example.org")
    assert cli.json("subscribers", "show", "ada@example.org")["status"] == "paused"
    cli("subscribers", "resume", "ada@example.org")
    assert cli.json("subscribers", "show", "ada@example.org")["status"] == "active"
    cli("subscribers", "remove", "ada@example.org", "--yes")
    cli("subscribers", "show", "ada@example.org", code=1)


def test_export_import_round_trip(cli: Cli, tmp_path: Path) -> None:
    cli(
        "subscribers",
        "add",
        "ada@example.org",
        "-k",
        "diffusion^2",
        "-x",
        "survey",
        "--name",
        "Ada",
        "--frequency",
        "daily",
    )
    cli("subscribers", "add", "bob@example.org", "-k", "graph neural networks")
    exported = tmp_path / "subs.json"
    cli("subscribers", "export", "-o", str(exported))
    data = json.loads(exported.read_text())
    assert [d["email"] for d in data["subscribers"]] == ["ada@example.org", "bob@example.org"]
    cli("subscribers", "remove", "ada@example.org", "--yes")
    cli("subscribers", "remove", "bob@example.org", "--yes")
    cli("subscribers", "import", str(exported))
    again = tmp_path / "again.json"
    cli("subscribers", "export", "-o", str(again))
    reread = json.loads(again.read_text())
    assert reread["subscribers"] == data["subscribers"]
    # Importing over existing subscribers needs --update; without it nothing changes.
    cli("subscribers", "import", str(exported), code=1)
    cli("subscribers", "import", str(exported), "--update")


def test_import_is_all_or_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "subs.json"
    path.write_text(
        json.dumps(
            [
                {"email": "ok@example.org", "keywords": ["diffusion"]},
                {"email": "broken", "keywords": ["x"]},
            ]
        )
    )
    result = cli("subscribers", "import", str(path), code=1)
    assert "[1]" in result.output
    assert cli.json("subscribers", "list") == []
    path.write_text("[{")
    assert "line 1" in cli("subscribers", "import", str(path), code=1).output


def test_sync_directory(cli: Cli, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "ada.toml").write_text(
        'email = "ada@example.org"\nkeywords = ["robot learning^2"]\nexclude = ["driving"]\n'
        'frequency = "weekly"\nweekday = "monday"\ntimezone = "Europe/London"\n'
    )
    (profiles / "bob.toml").write_text('email = "bob@example.org"\nkeywords = ["GNN"]\n')
    cli("subscribers", "add", "admin-added@example.org", "-k", "x-rays")
    first = cli.json("subscribers", "sync", str(profiles))
    assert first == {
        "added": ["ada@example.org", "bob@example.org"],
        "updated": [],
        "unchanged": [],
        "removed": [],
    }
    assert cli.json("subscribers", "sync", str(profiles))["unchanged"] == [
        "ada@example.org",
        "bob@example.org",
    ]
    (profiles / "bob.toml").write_text('email = "bob@example.org"\nkeywords = ["GNN", "GCN"]\n')
    (profiles / "ada.toml").unlink()
    result = cli.json("subscribers", "sync", str(profiles))
    assert result == {"added": [], "updated": ["bob@example.org"], "unchanged": [], "removed": []}
    assert cli.json("subscribers", "show", "ada@example.org")["email"]
    pruned = cli.json("subscribers", "sync", str(profiles), "--prune")
    assert pruned["removed"] == ["ada@example.org"]
    emails = [s["email"] for s in cli.json("subscribers", "list")]
    assert emails == ["admin-added@example.org", "bob@example.org"]  # CLI-added never pruned


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('email = "x@example.org"\nkeywords = [\n', "broken.toml"),
        ('email = "nope"\nkeywords = ["GNN"]\n', "invalid email"),
        ('email = "x@example.org"\nkeywords = ["GNN"]\ncolour = "red"\n', "unknown key 'colour'"),
        ('email = "x@example.org"\nkeywords = ["GNN"]\ntimezone = "Moon/Base"\n', "time zone"),
        ('email = "x@example.org"\nkeywords = "GNN^-1"\n', "broken.toml"),
    ],
)
def test_broken_profile_file_changes_nothing(
    cli: Cli, tmp_path: Path, content: str, message: str
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "ok.toml").write_text('email = "ok@example.org"\nkeywords = ["GNN"]\n')
    (profiles / "broken.toml").write_text(content)
    result = cli("subscribers", "sync", str(profiles), code=1)
    output = result.output.strip()
    assert message in output and "\n" not in output
    assert cli.json("subscribers", "list") == []


def test_keyword_shorthands_and_duplicates(cli: Cli) -> None:
    cli(
        "subscribers", "add", "ada@example.org",
        "-k", "diffusion", "-k", "Diffusion", "-k", "author:Yann LeCun", "-k", "author: Yann LeCun",
        "-k", "-survey", "-k", "+video", "-k", "cat:cs.CV",
    )  # fmt: skip
    info = cli.json("subscribers", "show", "ada@example.org")
    assert info["keywords"] == ["diffusion"]
    assert info["authors"] == ["Yann LeCun"]
    assert info["excludes"] == ["survey"]
    assert info["required"] == ["video"]
    assert info["categories"] == ["cs.CV"]
