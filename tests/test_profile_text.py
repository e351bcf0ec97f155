"""Profile text: the interest syntax, and the one-line errors for bad input."""

from __future__ import annotations

import pytest

from digest.errors import ProfileError
from digest.ranking import Interest, build_profile, parse_interest
from digest.subscribers.library import Profiles, profile_of, spec_of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("diffusion models", Interest("diffusion models")),
        ("graph neural networks^2", Interest("graph neural networks", 2.0)),
        ("  pre-training ^ 0.5 ", Interest("pre-training", 0.5)),
        ('"RL: exploration"^3', Interest("RL: exploration", 3.0)),
        ('"author:Ada"', Interest("author:Ada")),  # quoted: a phrase, not a prefix
        ("author:Yann LeCun", Interest("Yann LeCun", 1.0, "author")),
        ("Author: Ada Lovelace^1.5", Interest("Ada Lovelace", 1.5, "author")),
        ("cat:cs.LG", Interest("cs.LG", 1.0, "category")),
        ("cat:q-bio.BM^10", Interest("q-bio.BM", 10.0, "category")),
        ("BERT: pre-training", Interest("BERT: pre-training")),
    ],
)
def test_parse_valid(text: str, expected: Interest) -> None:
    assert parse_interest(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty keyword"),
        ("   ", "empty keyword"),
        ('""', "empty keyword"),
        ("author:", "empty author"),
        ("diffusion^", "not a number"),
        ("diffusion^high", "not a number"),
        ("diffusion^0", "> 0"),
        ("diffusion^-1", "> 0"),
        ("diffusion^11", "<= 10"),
        ("diffusion^nan", "> 0"),
        ('"diffusion models', "unbalanced quotes"),
        ('diffusion "models"', "surround the whole phrase"),
        ("diff^2usion", "not a number"),
        ("diffusion^2^3", "weight goes at the end"),
        ("the of and", "nothing to match"),
        ("cat:machine learning", "not a category"),
        ("author:1234", "nothing to match"),
    ],
)
def test_parse_invalid(text: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message) as caught:
        parse_interest(text)
    assert "\n" not in str(caught.value)


def test_build_profile_collects_everything() -> None:
    profile = build_profile(
        ["RL^2", "cat:cs.RO"],
        ["robotics", "author:Someone"],
        required=["offline"],
        authors=["Sergey Levine", "author:C. Finn^2"],
        categories=["cs.LG"],
        min_score=0.5,
        popularity_weight=0.2,
    )
    assert profile.interests == (
        Interest("RL", 2.0),
        Interest("cs.RO", 1.0, "category"),
        Interest("Sergey Levine", 1.0, "author"),
        Interest("C. Finn", 2.0, "author"),
        Interest("cs.LG", 1.0, "category"),
    )
    assert profile.excludes == ("robotics", "author:Someone")
    assert profile.required == ("offline",)
    assert (profile.min_score, profile.popularity_weight) == (0.5, 0.2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keywords": []}, "nothing to match"),
        ({"keywords": ["rl"], "excludes": ["robotics^2"]}, "take no weight"),
        ({"keywords": ["rl"], "excludes": [""]}, "empty keyword"),
        ({"keywords": ["rl"], "required": ['"x']}, "unbalanced"),
        ({"keywords": ["rl"], "min_score": -1.0}, "min_score"),
        ({"keywords": ["rl"], "min_score": float("nan")}, "min_score"),
        ({"keywords": ["rl"], "popularity_weight": -0.1}, "popularity_weight"),
        ({"keywords": "rl"}, "lists of phrases"),
        ({"keywords": ["rl"], "categories": ["not a category"]}, "not a category"),
    ],
)
def test_build_profile_invalid(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        build_profile(**kwargs)  # type: ignore[arg-type]  # a deliberately loose test input


def test_signed_keywords_are_exclusions_and_requirements() -> None:
    # One box of text can say everything: "-phrase" excludes, "+phrase" requires.
    profile = build_profile(["RL^2", "-robotics", "+language model"], ["-survey"])
    assert profile.interests == (Interest("RL", 2.0),)
    assert profile.excludes == ("survey", "robotics")
    assert profile.required == ("language model",)


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        (["-"], "nothing to match"),
        (["+"], "nothing to match"),
        (["-robotics"], "nothing to match: give at least one"),
        (["rl", "-robots^2"], "take no weight"),
        (["rl", '+"language model'], "unbalanced quotes"),
        (["author:Ada", "cat:"], "empty category"),
    ],
)
def test_build_profile_errors_point_at_the_text(keywords: list[str], message: str) -> None:
    with pytest.raises(ProfileError, match=message) as caught:
        build_profile(keywords)
    assert "\n" not in str(caught.value)


class _Row:
    """A stored interest row (kind, text, weight, position)."""

    def __init__(self, kind: str, text: str, weight: float, position: int) -> None:
        self.kind, self.text, self.weight, self.position = kind, text, weight, position


class _Owner:
    def __init__(self, min_score: float | None, popularity_weight: float) -> None:
        self.min_score, self.popularity_weight = min_score, popularity_weight


STORED = [  # one subscriber's rows each, in no particular order (as the store returns them)
    [("keyword", "diffusion models", 1.0, 0)],
    [
        ("require", "video", 1.0, 0),
        ("keyword", "graph neural networks", 2.0, 1),
        ("exclude", "-x -robotics", 1.0, 0),
        ("keyword", "RL: exploration", 0.5, 0),
        ("category", "cs.LG", 1.5, 0),
        ("author", "Yann LeCun", 1.0, 0),
        ("exclude", "survey", 1.0, 1),
    ],
    [  # signed keywords (quoted when typed, so stored as text): -x and +x after the lists
        ("keyword", "-robotics", 1.0, 2),
        ("keyword", "+reward model", 1.0, 0),
        ("keyword", "offline RL", 3.0, 1),
        ("require", "benchmark", 1.0, 0),
        ("exclude", "medical", 1.0, 0),
        ("author", "author:Ada Lovelace", 1.0, 1),
        ("author", "Grace Hopper", 2.0, 0),
    ],
    [("category", "q-bio.BM", 1.0, 0), ("keyword", "protein design", 1.0, 0)],
]


@pytest.mark.parametrize("owner", [_Owner(None, 0.0), _Owner(0.3, 1.5)])
def test_profiles_built_in_bulk_equal_the_ones_built_one_by_one(owner: _Owner) -> None:
    """``Profiles`` (a weekly run: each distinct entry parsed once) gives exactly what
    ``profile_of`` and ``spec_of`` give for the same stored rows, whatever their order."""
    profiles = Profiles()
    for _ in range(2):  # the second time from what it remembered
        for stored in STORED:
            rows = [_Row(*row) for row in stored]
            expected = (profile_of(owner, rows), tuple(spec_of(rows).keywords))
            assert profiles.build(owner, stored) == expected
            assert profiles.build(owner, stored[::-1]) == expected
