"""Typed settings, declared once with their help text.

Sources, highest priority first: keyword arguments, environment variables ``DIGEST_*``, the
TOML file (``DIGEST_CONFIG``, else ``./digest.toml`` when present), defaults. Every field's
description is the documentation: ``digest config`` prints them and the README's table is
generated from them. A setting that cannot be loaded (malformed TOML, an unknown key, a
variable that is not valid JSON, a bad value) is one :class:`~digest.errors.SettingsError`
line naming where it is and how to fix it (:mod:`digest.config.settings_files`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as SourceError

from digest.config.calendar import validate_timezone
from digest.config.settings_files import (
    config_file,
    explain,
    explain_source_error,
    is_secret,
    origins,
    read_config_file,
)
from digest.config.sources import SourceSpec
from digest.errors import ConfigError

PLACEHOLDER_SECRET = "change-me-in-production"  # noqa: S105 - a placeholder refused in production


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/paper-digest``, i.e. ``~/.local/share/paper-digest`` by default."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "paper-digest"


class Settings(BaseSettings):
    """All settings of paper-digest. Environment names are ``DIGEST_`` + the upper-cased name."""

    # env_ignore_empty: `DIGEST_SMTP_PORT=` (a blank line of a .env file, a compose variable
    # passed through unset) means "not set", not an empty value to validate.
    model_config = SettingsConfigDict(
        env_prefix="DIGEST_",
        extra="ignore",
        validate_default=True,
        frozen=True,
        env_ignore_empty=True,
    )

    environment: Literal["development", "production"] = Field(
        "development",
        description="`production` refuses placeholder secrets and a non-HTTPS base URL.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the SQLite store, the outbox and rendered feeds live "
        "(default `~/.local/share/paper-digest`, or `$XDG_DATA_HOME/paper-digest`).",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the store. Empty: SQLite file `digest.sqlite3` in the "
        "data directory. PostgreSQL: `postgresql+psycopg://user@host/db`.",
    )
    base_url: str = Field(
        "http://localhost:8000",
        description="Public URL of the web app; every link in emails and feeds starts with it.",
    )
    secret_key: SecretStr = Field(
        SecretStr(PLACEHOLDER_SECRET),
        description="Key that signs confirmation links. Must be changed in production.",
    )
    site_name: str = Field("Paper digest", description="Name shown in emails, feeds and pages.")

    # Mail
    delivery: Literal["outbox", "smtp"] = Field(
        "outbox",
        description="`outbox` writes `.eml` files to the outbox directory; `smtp` sends.",
    )
    outbox_dir: Path | None = Field(
        None, description="Directory for `.eml` files (default: `<data_dir>/outbox`)."
    )
    mail_from: str = Field(
        "Paper digest <digest@localhost>",
        description="`From` header: one address in a domain you control.",
    )
    bounce_address: str | None = Field(
        None,
        description="Envelope sender (MAIL FROM) for bounces (default: the From address).",
    )
    list_id: str | None = Field(
        None,
        description="List-Id (RFC 2919), e.g. `Paper digest <digest.example.org>` "
        "(default: built from the base URL's host).",
    )
    unsubscribe_mailto: str | None = Field(
        None, description="Optional mailto: address added to List-Unsubscribe."
    )
    smtp_host: str = Field("localhost", description="SMTP server host.")
    smtp_port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    smtp_security: Literal["none", "starttls", "ssl"] = Field(
        "none", description="`starttls` upgrades a plain connection; `ssl` is implicit TLS."
    )
    smtp_username: str | None = Field(None, description="SMTP AUTH user (optional).")
    smtp_password: SecretStr | None = Field(None, description="SMTP AUTH password (optional).")
    smtp_timeout: float = Field(30.0, gt=0, description="Seconds before an SMTP call times out.")
    smtp_retries: int = Field(
        3, ge=0, description="Retries (with exponential backoff) on 4xx or a dropped connection."
    )
    smtp_retry_wait: float = Field(
        1.0, ge=0, description="First backoff wait in seconds; doubles per retry, with jitter."
    )
    smtp_connections: int = Field(
        4, ge=1, le=100, description="SMTP connections sending in parallel, each reused."
    )
    smtp_rate_per_second: int | None = Field(
        None,
        ge=1,
        description="At most this many messages in any one second (sliding window), as the "
        "relay allows; empty: unlimited.",
    )
    smtp_rate_per_hour: int | None = Field(
        None,
        ge=1,
        description="At most this many messages in any hour (sliding window); once used up, "
        "the rest waits for a later run. Empty: unlimited.",
    )
    smtp_transaction_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds one SMTP transaction (or connecting) may take in all, however "
        "slowly the server answers.",
    )
    delivery_batch: int = Field(
        500,
        ge=1,
        le=10_000,
        description="Digests claimed, rendered and recorded together in a run (and per queue job).",
    )
    delivery_give_up_days: float = Field(
        5.0,
        gt=0,
        description="Days a digest keeps being retried after transient failures before it "
        "is given up (an MTA's queue lifetime).",
    )
    queue: Literal["inline", "procrastinate"] = Field(
        "inline",
        description="`procrastinate` (PostgreSQL only): runs defer delivery batches as jobs "
        "for `digest worker` processes on any machine; `inline` delivers in the run.",
    )
    render_processes: int = Field(
        0,
        ge=0,
        description="Processes rendering emails in a run; 0: one per core for large runs, "
        "none (this process) for small ones.",
    )
    bounce_limit: int = Field(
        3, ge=1, description="Hard bounces after which an address is no longer sent to."
    )
    dkim_selector: str | None = Field(None, description="DKIM selector (enables signing).")
    dkim_domain: str | None = Field(None, description="DKIM signing domain.")
    dkim_private_key: Path | None = Field(None, description="PEM file of the DKIM private key.")

    # Digests
    default_frequency: Literal["daily", "weekly"] = Field(
        "weekly", description="Frequency of new subscribers."
    )
    default_weekday: int = Field(
        0, ge=0, le=6, description="Weekday of weekly digests (0 = Monday)."
    )
    default_hour: int = Field(8, ge=0, le=23, description="Local hour digests are sent.")
    default_timezone: str = Field("UTC", description="IANA time zone of new subscribers.")
    max_items: int = Field(
        20, ge=1, le=100, description="Papers per digest (about 27 fit before Gmail clips)."
    )
    min_score: float | None = Field(
        None, description="Score threshold for picks (empty: the ranker's default)."
    )
    lookback_days: int = Field(
        7, ge=1, description="A first digest considers papers first seen this many days back."
    )
    send_empty: bool = Field(
        False, description="Send a short 'nothing new' note instead of no email."
    )
    feed_items: int = Field(50, ge=1, le=500, description="Items in personal feeds.")

    # Ranking (digest/ranking/)
    ranker: Literal["lexical", "semantic"] = Field(
        "lexical",
        description="`semantic` blends in sentence embeddings; needs paper-digest[semantic].",
    )

    # Scheduler (digest serve / digest scheduler)
    scheduler_fetch_cron: str = Field(
        "0 * * * *",
        description="When the scheduler fetches the sources: a 5-field crontab in UTC "
        "(default hourly); `off` disables fetching.",
    )
    scheduler_deliver_interval: float = Field(
        300.0, gt=0, description="Seconds between the scheduler's checks for due digests."
    )
    scheduler_lease_ttl: float = Field(
        60.0,
        gt=0,
        description="Seconds a scheduler's lease lasts without renewal; a standby takes over "
        "after it expires.",
    )
    scheduler_heartbeat: float = Field(
        15.0,
        gt=0,
        description="Seconds between lease renewals (leader) or takeover attempts (standby); "
        "at most half the lease TTL.",
    )
    scheduler_misfire_grace: float = Field(
        600.0,
        gt=0,
        description="Seconds a scheduled job may start late (busy, suspended) before that run "
        "is dropped for the next one.",
    )

    # Web app (subscriber pages and feeds over HTTP; digest/web)
    web_host: str = Field("127.0.0.1", description="Address `digest serve` listens on.")
    web_port: int = Field(8000, ge=1, le=65535, description="Port `digest serve` listens on.")
    web_forwarded_allow_ips: str = Field(
        "",
        description="Reverse proxies trusted to set X-Forwarded-For (comma-separated IPs or "
        "networks, `*` for any); the client IP it names feeds the subscribe rate limit. Empty "
        "(the default): no one is trusted, the connecting address counts.",
    )
    confirm_max_age: int = Field(
        172_800, ge=60, description="Seconds a confirmation link stays valid (48 hours)."
    )
    subscribe_ip_limit: int = Field(
        20, ge=1, description="Subscribe posts per client IP per window; more get HTTP 429."
    )
    subscribe_address_limit: int = Field(
        3,
        ge=1,
        description="Emails the subscribe form sends one address per window; further "
        "requests get the same answer and send nothing.",
    )
    subscribe_window: int = Field(
        3600, ge=1, description="Window of the subscribe rate limits, in seconds."
    )
    public_feed: bool = Field(
        True, description="Serve `/feeds/all.atom` (`.rss`, `.json`): every new paper."
    )
    feed_max_age: int = Field(
        900, ge=0, description="Cache-Control max-age of the feeds over HTTP, in seconds."
    )

    # Files and limits
    templates_dir: Path | None = Field(
        None, description="Directory whose templates override the shipped ones."
    )
    max_listing_bytes: int = Field(
        50_000_000, ge=1024, description="Listings larger than this are refused."
    )
    log_json: bool = Field(False, description="Log one JSON object per line.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )

    # Listing sources (digest fetch, digest sources …)
    sources: list[SourceSpec] = Field(
        default_factory=list,
        description="Listing sources: the `sources` array of tables in digest.toml (name, "
        "kind, url, options; see the README); `digest sources add` adds more.",
    )
    hf_token: SecretStr | None = Field(
        None, description="Hugging Face token, sent as `Authorization: Bearer` (optional)."
    )
    http_timeout: float = Field(
        30.0, gt=0, description="Seconds to connect, or to wait for more bytes, before giving up."
    )
    http_retries: int = Field(
        4, ge=0, description="Retries after a connection error, timeout, 429 or 5xx."
    )
    http_retry_wait: float = Field(
        2.0, ge=0, description="First backoff wait in seconds; doubles per retry, with jitter."
    )
    http_max_wait: float = Field(
        120.0,
        ge=0,
        description="Longest wait before a retry; a longer Retry-After gives up instead.",
    )
    http_user_agent: str | None = Field(
        None,
        description="User-Agent of fetches (default: paper-digest/VERSION with the base URL "
        "and the From address as contact, as arXiv asks).",
    )
    arxiv_delay: float = Field(
        3.0,
        ge=0,
        description="Seconds between two arXiv requests, one connection at a time (its terms).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = config_file()
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path is not None:
            data = read_config_file(path, settings_cls.model_fields)
            sources.append(InitSettingsSource(settings_cls, data))
        return tuple(sources)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("default_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            return validate_timezone(value)
        except ConfigError as exc:  # a ValueError is what names the setting in the message
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.environment == "production":
            if self.secret_key.get_secret_value() in ("", PLACEHOLDER_SECRET):
                raise ValueError("DIGEST_SECRET_KEY must be set to a real secret in production")
            if not self.base_url.startswith("https://"):
                raise ValueError("DIGEST_BASE_URL must be https:// in production")
        return self

    # Derived values -------------------------------------------------------------------

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'digest.sqlite3'}"

    @property
    def resolved_outbox_dir(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def resolved_list_id(self) -> str:
        if self.list_id:
            return self.list_id
        host = urlsplit(self.base_url).hostname or "localhost"
        return f"{self.site_name} <digest.{host}>"

    @property
    def envelope_from(self) -> str:
        from email.utils import parseaddr  # noqa: PLC0415 - only needed here

        return self.bounce_address or parseaddr(self.mail_from)[1]


def load_settings(**overrides: Any) -> Settings:
    """Build settings from overrides, environment and digest.toml; one-line SettingsError if
    they cannot be loaded (it names the variable or the file and key, and the fix)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise explain(exc, overrides=overrides, path=config_file()) from None
    except SourceError as exc:
        raise explain_source_error(exc) from None


def setting_origins(overrides: dict[str, Any] | None = None) -> dict[str, str]:
    """Where each setting's value comes from: option, environment, file or default."""
    return origins(Settings.model_fields, overrides or {}, config_file())


def setting_values(settings: Settings) -> dict[str, Any]:
    """Every setting as JSON-ready typed data (numbers, booleans, null, lists); secrets are
    ``"***"`` when set (``"(placeholder)"`` for the development secret key)."""
    values = settings.model_dump(mode="json")
    for name in values:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) or is_secret(name):
            secret = value.get_secret_value() if isinstance(value, SecretStr) else value
            values[name] = (
                None if not secret else "(placeholder)" if secret == PLACEHOLDER_SECRET else "***"
            )
    return values


def describe_settings() -> list[tuple[str, str, str, str]]:
    """(name, environment variable, default, description) of every setting, for the docs."""
    rows = []
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default = "see description"
        elif isinstance(field.default, SecretStr):
            default = "(placeholder)"
        else:
            default = "" if field.default is None else str(field.default)
        rows.append((name, f"DIGEST_{name.upper()}", default, field.description or ""))
    return rows
