"""Source definitions (digest.toml, environment, store), settings and the migration."""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sources_support import NOW, day
from sqlmodel import SQLModel

from digest import __version__
from digest.config.settings import Settings, load_settings
from digest.config.sources import SourceSpec, build_spec
from digest.errors import ConfigError
from digest.parsers import FORMATS
from digest.sources.base import Cursor
from digest.sources.config import (
    add_source,
    list_sources,
    load_cursor,
    remove_source,
    save_cursor,
    select_sources,
)
from digest.sources.http import user_agent
from digest.store import db


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "arxiv"}, "needs categories"),
        ({"kind": "arxiv", "categories": "cs.LG, math.OC hep-th"}, None),
        ({"kind": "arxiv", "categories": ["LG"]}, "not an arXiv category"),
        ({"kind": "hf_daily", "categories": "cs.LG"}, "arxiv sources only"),
        ({"kind": "feed"}, "needs a url"),
        ({"kind": "feed", "url": "javascript:alert(1)"}, r"absolute http\(s\) URL"),
        ({"kind": "file"}, "needs a url"),
        ({"kind": "file", "url": "x.json", "format": "pdf"}, "format: Input should be"),
        ({"kind": "feed", "url": "https://x.org/f", "cross": True}, "arxiv sources only"),
        ({"kind": "hf_daily", "lookback_days": -1}, "greater than or equal to 0"),
        ({"kind": "hf_daily", "name": "two words"}, "name: use letters"),
        ({"kind": "hf_daily", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_spec_validation(fields: dict[str, object], message: str | None) -> None:
    values = {"name": "s", **fields}
    if message is None:
        assert build_spec(**values).categories == ("cs.LG", "math.OC", "hep-th")
        return
    with pytest.raises(ConfigError, match=message) as caught:
        build_spec(**values)
    assert "\n" not in str(caught.value)


def test_resolved_urls() -> None:
    arxiv = SourceSpec(name="a", kind="arxiv", categories=("cs.LG", "cs.AI"))
    assert arxiv.resolved_url == "https://rss.arxiv.org/rss/cs.LG+cs.AI"
    full = SourceSpec(
        name="a", kind="arxiv", categories=("cs.LG",), url="https://mirror.example/atom/cs.LG"
    )
    assert full.resolved_url == "https://mirror.example/atom/cs.LG"
    assert arxiv.resolved_api_url == "https://export.arxiv.org/api/query"
    assert SourceSpec(name="h", kind="hf_daily").resolved_lookback_days == 7


def test_file_formats_match_the_parsers() -> None:
    literal = typing.get_args(SourceSpec.model_fields["format"].annotation)
    assert set(literal) == {"auto", *FORMATS}


def test_digest_toml_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text(
        '[[sources]]\nname = "hf"\nkind = "hf_daily"\nlookback_days = 2\n\n'
        '[[sources]]\nname = "ml"\nkind = "arxiv"\ncategories = ["cs.LG"]\ncross = true\n'
    )
    from_file = load_settings()
    assert [(s.name, s.kind) for s in from_file.sources] == [("hf", "hf_daily"), ("ml", "arxiv")]
    assert from_file.sources[1].cross is True

    (tmp_path / "digest.toml").write_text('[[sources]]\nname = "x"\nkind = "arxiv"\n')
    with pytest.raises(ConfigError, match=r"digest.toml: sources\[0\]: .*needs categories"):
        load_settings()

    monkeypatch.setenv(
        "DIGEST_SOURCES", '[{"name": "env", "kind": "feed", "url": "https://x.org/f"}]'
    )
    assert [s.name for s in load_settings().sources] == ["env"]


def test_duplicate_names_are_refused(make_settings: Callable[..., Settings]) -> None:
    twice = [{"name": "a", "kind": "hf_daily"}, {"name": "a", "kind": "hf_daily"}]
    settings = make_settings(sources=twice)
    with db.transaction(settings) as session, pytest.raises(ConfigError, match="defined twice"):
        list_sources(session, settings)


def test_store_definitions_and_cursor(backend: str, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(sources=[{"name": "toml", "kind": "hf_daily", "enabled": False}])
    spec = build_spec(name="added", kind="arxiv", categories="cs.LG", enrich=True)
    with db.transaction(settings) as session:
        add_source(session, settings, spec, now=NOW)
        save_cursor(session, "added", Cursor(day(-1), '"e"', "Thu"), now=NOW)
    with db.transaction(settings) as session:
        entries = list_sources(session, settings)
        assert [(e.spec.name, e.origin) for e in entries] == [
            ("toml", "config"),
            ("added", "store"),
        ]
        assert entries[1].spec == spec
        assert [e.spec.name for e in select_sources(entries, None)] == ["added"]  # toml disabled
        assert [e.spec.name for e in select_sources(entries, ["toml"])] == ["toml"]
        assert load_cursor(session, "added") == Cursor(day(-1), '"e"', "Thu")
    with db.transaction(settings) as session:
        remove_source(session, settings, "added")
    with db.transaction(settings) as session:
        assert load_cursor(session, "added") == Cursor()  # state goes with the definition
        assert [e.spec.name for e in list_sources(session, settings)] == ["toml"]


@pytest.mark.real_migrations
def test_migration_matches_the_source_models(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    engine = db.get_engine(make_settings())
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    ours = [d for d in diff if "source" in repr(d) and "scheduler" not in repr(d)]
    assert ours == []


def test_default_user_agent_names_us_and_a_contact(make_settings: Callable[..., Settings]) -> None:
    agent = user_agent(make_settings())
    assert agent == (
        f"paper-digest/{__version__} (+https://digest.example.org; "
        "mailto:digest@digest.example.org)"
    )
    assert user_agent(make_settings(http_user_agent="custom/1")) == "custom/1"
