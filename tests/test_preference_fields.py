"""The preference declaration (digest.subscribers.fields) is what every surface offers.

CLI options, web form inputs, profile files and exports, ``show --json`` and the library's
own types are derived from :data:`PREFERENCES` or checked against it here, so a new field
cannot be forgotten in one of them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from typer.testing import CliRunner
from web_fixtures import make_app, seed, web_client  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package

from digest.cli import app
from digest.config.settings import Settings
from digest.subscribers.fields import (
    FILE_KEYS,
    PREFERENCES,
    PROFILE_FIELDS,
    SCHEDULE_FIELDS,
    SIGNUP_FIELDS,
    WEB_FIELDS,
)
from digest.subscribers.library import ProfileSpec, SubscriberFields
from tests.conftest import Cli


class _Inputs(HTMLParser):
    """Names of every input, select and textarea of the page's forms."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("input", "select", "textarea"):
            name = dict(attrs).get("name")
            if name and name != "csrf_token":
                self.names.append(name)


def form_inputs(html: str) -> set[str]:
    parser = _Inputs()
    parser.feed(html)
    return set(parser.names)


def test_library_types_have_exactly_the_declared_fields() -> None:
    assert [f.name for f in dataclasses.fields(ProfileSpec)] == [p.name for p in PROFILE_FIELDS]
    assert [f.name for f in dataclasses.fields(SubscriberFields)] == [
        p.name for p in SCHEDULE_FIELDS
    ]


def _options(command: str) -> set[str]:
    result = CliRunner().invoke(app, ["subscribers", command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return set(re.findall(r"(--[a-z][a-z-]+)", result.output))


def test_cli_add_and_edit_offer_every_preference() -> None:
    for command in ("add", "edit"):
        assert {p.flag for p in PREFERENCES} <= _options(command)
    edits = {
        f"--{verb}-{p.flag.removeprefix('--')}"
        for p in PROFILE_FIELDS
        for verb in ("add", "remove")
    }
    assert edits <= _options("edit")


def test_every_preference_set_on_the_cli_shows_in_show_json(cli: Cli) -> None:
    cli(
        "subscribers", "add", "ada@example.org", "-k", "world models", "-x", "survey",
        "--require", "robot", "--author", "Ada Lovelace", "--category", "cs.RO",
        "--name", "Ada", "--frequency", "daily", "--weekday", "friday", "--hour", "7",
        "--timezone", "Europe/London", "--max-items", "9", "--min-score", "0.5",
        "--popularity-weight", "1.5",
    )  # fmt: skip
    info = cli.json("subscribers", "show", "ada@example.org")
    assert {p.name for p in PREFERENCES} <= set(info)
    assert (info["required"], info["authors"], info["categories"]) == (
        ["robot"],
        ["Ada Lovelace"],
        ["cs.RO"],
    )
    assert (info["weekday"], info["min_score"], info["popularity_weight"]) == ("friday", 0.5, 1.5)
    cli("subscribers", "edit", "ada@example.org", "--add-author", "Grace Hopper",
        "--remove-category", "cs.RO")  # fmt: skip
    info = cli.json("subscribers", "show", "ada@example.org")
    assert (info["authors"], info["categories"]) == (["Ada Lovelace", "Grace Hopper"], [])


def test_profile_files_and_exports_use_the_declared_keys(
    cli: Cli, settings: Settings, tmp_path: Path
) -> None:
    cli("subscribers", "add", "ada@example.org", "-k", "RLHF", "--author", "Ada Lovelace")
    exported = tmp_path / "export.json"
    cli("subscribers", "export", "-o", str(exported))
    (row,) = json.loads(exported.read_text())["subscribers"]
    account = {"token", "created_at", "confirmed_at", "unsubscribed_at", "bounce_count"}
    assert set(row) - {"email", "status", "digests"} - account <= set(FILE_KEYS)
    assert set(row) - {"digests"} - account <= set(cli.json("subscribers", "show", row["email"]))
    assert {FILE_KEYS[key] for key in row if key in FILE_KEYS} >= {"keywords", "authors"}


def test_web_forms_have_the_declared_inputs(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    ada = seed(settings)
    with web_client(make_app(settings)) as client:
        landing = client.get("/").text
        manage = client.get(f"/manage/{ada.token}").text
    signup = landing.split('action="/subscribe"', 1)[1].split("</form>", 1)[0]
    assert form_inputs(signup) == {"email", *SIGNUP_FIELDS}
    edit = manage.split('data-testid="manage-form"', 1)[1].split("</form>", 1)[0]
    assert form_inputs(edit) == set(WEB_FIELDS)
