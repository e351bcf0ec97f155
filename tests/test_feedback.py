"""The reader's ratings through the CLI: ``digest feedback``, ``subscribers show --json``,
``digest rank --subscriber``, and exports that keep them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SEEDS, Cli

PAGE = SEEDS / "000_5987bca98b9578f4.txt"  # 56 papers: pre-training, RL, language models
WARM = "title:586af7dd40271c42"  # Continual Pre-Training of LLMs: How to (re)warm your model
GAP = "title:e66a355f5b92524e"  # Efficient Continual Pre-training by Mitigating the Stability Gap


@pytest.fixture
def ada(cli: Cli) -> str:
    cli("import", str(PAGE))
    cli("subscribers", "add", "ada@example.org", "-k", "continual pre-training", "-k", "RLHF")
    return "ada@example.org"


def test_rate_show_replace_clear(cli: Cli, ada: str) -> None:
    assert cli.json("subscribers", "show", ada)["ratings"] == []
    done = cli.json("feedback", ada, WARM, "--up")
    assert done == {"email": ada, "key": WARM, "title": done["title"], "vote": 1}
    assert done["title"].startswith("Continual Pre-Training of Large Language Models")
    [rating] = cli.json("subscribers", "show", ada)["ratings"]
    assert rating["key"] == WARM and rating["vote"] == 1 and rating["title"] == done["title"]
    assert rating["rated_at"].endswith("+00:00")
    # Rating again replaces; the newest comes first.
    cli("feedback", ada, WARM, "--down")
    cli("feedback", ada, GAP, "--up")
    ratings = cli.json("subscribers", "show", ada)["ratings"]
    assert [(r["key"], r["vote"]) for r in ratings] == [(GAP, 1), (WARM, -1)]
    shown = cli("subscribers", "show", ada).output
    assert "rated more like this: Efficient Continual Pre-training" in shown
    cli("feedback", ada, WARM, "--clear")
    assert [r["key"] for r in cli.json("subscribers", "show", ada)["ratings"]] == [GAP]


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["ada@example.org", "arxiv:0000.00000", "--up"], "no paper 'arxiv:0000.00000'", 1),
        (["ada@example.org", WARM], "exactly one of --up, --down, --clear", 2),  # usage
        (["ada@example.org", WARM, "--up", "--down"], "exactly one of --up, --down, --clear", 2),
        (["bob@example.org", WARM, "--up"], "no subscriber bob@example.org", 1),
    ],
)
def test_bad_feedback_is_one_line_and_changes_nothing(
    cli: Cli, ada: str, args: list[str], message: str, code: int
) -> None:
    output = cli("feedback", *args, code=code).output.strip()
    assert output.startswith("error:") and "\n" not in output and message in output
    assert cli.json("subscribers", "show", ada)["ratings"] == []


def test_rank_for_a_subscriber_learns_from_ratings(cli: Cli, ada: str) -> None:
    before = cli.json("rank", "--subscriber", ada, "--top", "20")  # the store's window
    assert before and all(
        set(item) == {"key", "title", "url", "score", "matched", "where", "reason"}
        for item in before
    )
    from_file = cli.json("rank", str(PAGE), "--subscriber", ada, "--top", "20")
    assert [i["key"] for i in from_file] == [i["key"] for i in before]
    cli("feedback", ada, WARM, "--up")
    after = cli.json("rank", "--subscriber", ada, "--top", "20")
    liked = [i for i in after if "that you rated up" in i["reason"]]
    assert liked, after
    assert all("Continual Pre-Training of Large Language Models" in i["reason"] for i in liked)
    moved = {i["key"]: i["score"] for i in after}
    assert any(moved[i["key"]] > i["score"] for i in before if i["key"] in moved)


def test_rank_needs_either_keywords_or_a_subscriber(cli: Cli, ada: str) -> None:
    for args in (
        ["rank", str(PAGE)],
        ["rank", "-k", "RLHF"],
        ["rank", "--subscriber", ada, "-k", "x"],
    ):
        output = cli(*args, code=2).output.strip()  # a usage error
        assert output.startswith("error:") and "\n" not in output


def test_ratings_survive_export_and_import(cli: Cli, ada: str, tmp_path: Path) -> None:
    cli("feedback", ada, WARM, "--up")
    cli("feedback", ada, GAP, "--down")
    exported = tmp_path / "subs.json"
    cli("subscribers", "export", "-o", str(exported))
    document = json.loads(exported.read_text())
    [row] = document["subscribers"]
    assert [(r["key"], r["vote"]) for r in row["ratings"]] == [(GAP, -1), (WARM, 1)]
    before = cli.json("subscribers", "show", ada)["ratings"]
    cli("subscribers", "remove", ada, "--yes")
    cli("subscribers", "import", str(exported))
    assert cli.json("subscribers", "show", ada)["ratings"] == before
    again = tmp_path / "again.json"
    cli("subscribers", "export", "-o", str(again))
    assert json.loads(again.read_text())["subscribers"] == document["subscribers"]
    # --update replaces them; a paper this store lacks is left out, the rest imported.
    row["ratings"] = [{"key": WARM, "vote": -1}, {"key": "arxiv:0000.00000", "vote": 1}]
    exported.write_text(json.dumps({**document, "subscribers": [row]}))
    cli("subscribers", "import", str(exported), "--update")
    assert [(r["key"], r["vote"]) for r in cli.json("subscribers", "show", ada)["ratings"]] == [
        (WARM, -1)
    ]


@pytest.mark.parametrize(
    "ratings",
    [
        "up",
        [{"vote": 1}],
        [{"key": WARM, "vote": 2}],
        [{"key": WARM, "vote": True}],
        [{"key": WARM, "vote": 1, "rated_at": "yesterday"}],
        [{"key": WARM, "vote": 1, "rated_at": "2026-11-23T08:00:00"}],
    ],
)
def test_bad_ratings_in_an_import_change_nothing(
    cli: Cli, ada: str, tmp_path: Path, ratings: object
) -> None:
    cli("feedback", ada, WARM, "--up")
    path = tmp_path / "subs.json"
    path.write_text(
        json.dumps(
            [
                {"email": "new@example.org", "keywords": ["diffusion"]},
                {"email": ada, "keywords": ["RLHF"], "ratings": ratings},
            ]
        )
    )
    output = cli("subscribers", "import", str(path), "--update", code=1).output.strip()
    assert output.startswith("error:") and "[1]" in output and "\n" not in output
    assert [s["email"] for s in cli.json("subscribers", "list")] == [ada]
    assert [r["key"] for r in cli.json("subscribers", "show", ada)["ratings"]] == [WARM]
