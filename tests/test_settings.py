from pathlib import Path

import pytest

from digest.config.settings import describe_settings, load_settings
from digest.errors import ConfigError


def test_defaults_are_embedded(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.delivery == "outbox"
    assert settings.data_dir == tmp_path / "xdg" / "paper-digest"
    assert settings.resolved_database_url == f"sqlite:///{settings.data_dir / 'digest.sqlite3'}"
    assert settings.resolved_outbox_dir == settings.data_dir / "outbox"
    assert settings.resolved_list_id == "Paper digest <digest.localhost>"


def test_environment_overrides_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "digest.toml").write_text(
        'base_url = "https://papers.example.org/"\nmax_items = 12\ndelivery = "smtp"\n'
    )
    monkeypatch.setenv("DIGEST_MAX_ITEMS", "15")
    settings = load_settings()
    assert settings.base_url == "https://papers.example.org"
    assert settings.max_items == 15
    assert settings.delivery == "smtp"
    assert settings.resolved_list_id == "Paper digest <digest.papers.example.org>"


def test_explicit_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('site_name = "Lab digest"\n')
    monkeypatch.setenv("DIGEST_CONFIG", str(path))
    assert load_settings().site_name == "Lab digest"
    monkeypatch.setenv("DIGEST_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not a file"):
        load_settings()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"base_url": "ftp://x"}, "base_url"),
        ({"delivery": "pigeon"}, "delivery"),
        ({"default_timezone": "Nowhere/Town"}, "unknown time zone"),
        ({"smtp_port": 0}, "smtp_port"),
        ({"environment": "production", "base_url": "https://x.org"}, "DIGEST_SECRET_KEY"),
        (
            {"environment": "production", "secret_key": "s3cr3t-value", "base_url": "http://x"},
            "https",
        ),
    ],
)
def test_invalid_settings_are_one_line_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(**overrides)
    assert "\n" not in str(info.value)


def test_every_setting_is_documented() -> None:
    rows = describe_settings()
    assert len(rows) > 20
    for name, env, _default, description in rows:
        assert env == f"DIGEST_{name.upper()}"
        assert description, name


def test_an_empty_environment_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # A .env line `DIGEST_SMTP_PORT=` or a compose variable passed through empty.
    monkeypatch.setenv("DIGEST_SMTP_PORT", "")
    monkeypatch.setenv("DIGEST_SITE_NAME", "")
    settings = load_settings()
    assert (settings.smtp_port, settings.site_name) == (25, "Paper digest")
