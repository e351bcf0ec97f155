"""One model checks preference values everywhere, with messages that name the field.

Issue 11, item 6: in a profile file ``hour = "8"`` crashed (``'<=' not supported between
instances of 'int' and 'str'``), ``hour = true`` was stored as 1, ``keywords = "a, b"``
became one phrase while ``[1, 2]`` was refused. Now files and imports are strict, and the
CLI, the web form, profile files and JSON imports refuse the same value with the same words.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import Cli

from digest.config.settings import Settings
from digest.digests.transfer import import_file
from digest.errors import PreferenceError, ProfileError, SubscriberError
from digest.subscribers import admin
from digest.subscribers.fields import PREFERENCES
from digest.subscribers.validation import PreferenceModel, validate_preferences
from digest.web.forms import parse_preferences

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
# (key, TOML value, the same value in JSON, what the message says after "key: ")
HOUR = "must be a whole number from 0 to 23, not"
DAYS = "monday, tuesday, wednesday, thursday, friday, saturday, sunday"
LIST = 'must be a list of texts, e.g. ["first", "second"], not'
REFUSED = [
    ("hour", '"8"', "8", f'{HOUR} "8" (a number is written without quotes)'),
    ("hour", "true", True, f"{HOUR} true"),
    ("hour", "7.5", 7.5, f"{HOUR} 7.5"),
    ("hour", "25", 25, f"{HOUR} 25"),
    ("max_items", "0", 0, "must be a whole number from 1 to 100, not 0"),
    ("popularity_weight", "11", 11, "must be a number from 0 to 10, not 11"),
    ("min_score", "false", False, "must be a number of at least 0, not false"),
    ("frequency", '"hourly"', "hourly", 'must be one of daily, weekly, off, not "hourly"'),
    (
        "weekday",
        '"funday"',
        "funday",
        f'must be a weekday ({DAYS}) or 0-6 (0 = Monday), not "funday"',
    ),
    ("weekday", "7", 7, "not 7"),
    ("timezone", '"Mars"', "Mars", 'must be an IANA time zone such as Europe/Berlin, not "Mars"'),
    ("keywords", '"a, b"', "a, b", f'{LIST} "a, b"; write keywords = ["a", "b"]'),
    ("keywords", "[1, 2]", [1, 2], f"{LIST} [1, 2]"),
    ("excludes", '"survey"', "survey", 'not "survey"; write excludes = ["survey"]'),
    ("exclude", "[true]", [True], "not [true]"),
    ("name", "42", 42, "must be text of at most 200 characters, not 42"),
]


def _profile(directory: Path, key: str, literal: str) -> None:
    extra = "" if key == "keywords" else 'keywords = ["robots"]\n'
    (directory / "ada.toml").write_text(f'email = "ada@example.org"\n{extra}{key} = {literal}\n')


@pytest.mark.parametrize(("key", "literal", "value", "problem"), REFUSED)
def test_profile_files_refuse_with_the_field_named(
    key: str, literal: str, value: object, problem: str, settings: Settings, tmp_path: Path
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    _profile(profiles, key, literal)
    with pytest.raises(ProfileError) as info:
        admin.sync(settings, profiles, prune=False, now=NOW)
    assert str(info.value).startswith(f"{profiles / 'ada.toml'}: {key}: ")
    assert problem in str(info.value)
    assert admin.listing(settings) == []


@pytest.mark.parametrize(("key", "literal", "value", "problem"), REFUSED)
def test_json_imports_refuse_the_same_way(
    key: str, literal: str, value: object, problem: str, settings: Settings, tmp_path: Path
) -> None:
    entry: dict[str, object] = {"email": "ada@example.org", "keywords": ["robots"], key: value}
    path = tmp_path / "subscribers.json"
    path.write_text(json.dumps([entry]))
    with pytest.raises(ProfileError) as info:
        import_file(settings, path, update=False, now=NOW)
    assert f"[0]: {key}: " in str(info.value) and problem in str(info.value)


def test_the_cli_the_web_form_and_files_say_the_same(cli: Cli, tmp_path: Path) -> None:
    cli("subscribers", "add", "ada@example.org", "-k", "robots")
    problem = "must be a whole number from 0 to 23, not 25"
    result = cli("subscribers", "edit", "ada@example.org", "--hour", "25", code=1)
    assert result.stderr == f"error: --hour: {problem}\n"
    with pytest.raises(SubscriberError, match=f"^Hour {problem}$"):
        parse_preferences(
            {"frequency": "weekly", "keywords": "robots", "hour": "25", "weekday": "monday"}
        )
    with pytest.raises(PreferenceError, match=f"^hour: {problem}$"):
        validate_preferences({"hour": 25})
    bad_zone = cli("subscribers", "edit", "ada@example.org", "--timezone", "Mars/Base", code=1)
    assert "--timezone: must be an IANA time zone such as Europe/Berlin" in bad_zone.stderr
    assert cli.json("subscribers", "show", "ada@example.org")["hour"] == 8


def test_valid_values_are_kept_and_normalised() -> None:
    checked = validate_preferences(
        {"hour": 0, "weekday": "Fri", "exclude": ["survey"], "min_score": 1, "name": "Ada"}
    )
    assert checked == {
        "hour": 0,
        "weekday": 4,
        "excludes": ["survey"],
        "min_score": 1.0,
        "name": "Ada",
    }
    with pytest.raises(PreferenceError, match="given twice"):
        validate_preferences({"exclude": ["a"], "excludes": ["b"]})


def test_the_model_has_exactly_the_declared_fields() -> None:
    assert list(PreferenceModel.model_fields) == [p.name for p in PREFERENCES]
