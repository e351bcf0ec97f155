"""A source definition: one ``[[sources]]`` table of digest.toml or one ``digest sources add``.

Validated once, here, so a typo in digest.toml is a one-line ConfigError when the settings
load, not a surprise at 3 a.m. This module imports nothing from the package but its errors:
the settings import it.

::

    [[sources]]
    name = "arxiv-ml"
    kind = "arxiv"
    categories = ["cs.LG", "cs.AI"]
    cross = true            # also announce cross-listed papers
    enrich = false          # look the new ids up in the arXiv query API
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from digest.config.formats import FormatChoice
from digest.errors import ConfigError

SourceKind = Literal["hf_daily", "arxiv", "feed", "file"]
KINDS: tuple[str, ...] = ("hf_daily", "arxiv", "feed", "file")

# Production endpoints; every one can be replaced per source (mirrors, tests).
HF_DAILY_URL = "https://huggingface.co/api/daily_papers"
ARXIV_LISTING_URL = "https://rss.arxiv.org/rss"
ARXIV_API_URL = "https://export.arxiv.org/api/query"
DEFAULT_LOOKBACK_DAYS = 7

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# cs.LG, math.OC, stat.ML, hep-th, astro-ph.GA, q-bio.NC …
_CATEGORY = re.compile(r"^[a-z][a-z-]*(?:\.[A-Za-z][A-Za-z-]*)?$")


def _http_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an absolute http(s) URL, not {value!r}")
    return value


class SourceSpec(BaseModel):
    """One listing source. Only ``name`` and ``kind`` are always required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique name; recorded on every run and sighting.")
    kind: SourceKind = Field(description="hf_daily, arxiv, feed or file.")
    url: str | None = Field(
        None,
        description="hf_daily: the daily_papers endpoint; arxiv: the listing base "
        "(`…/rss` or `…/atom`); feed: the feed URL; file: a local path.",
    )
    categories: tuple[str, ...] = Field((), description="arXiv categories, e.g. cs.LG.")
    lookback_days: int | None = Field(
        None, ge=0, le=366, description="hf_daily: days to fetch on the first run."
    )
    cross: bool = Field(False, description="arxiv: announce cross-listed papers too.")
    enrich: bool = Field(False, description="arxiv: complete new papers from the query API.")
    api_url: str | None = Field(None, description="arxiv: the query API endpoint.")
    format: FormatChoice = Field("auto", description="file: the listing format (default: detect).")
    enabled: bool = Field(True, description="false: `digest fetch` skips it unless named.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '.', '_' or '-' (at most 100), e.g. hf-daily")
        return value

    @field_validator("categories", mode="before")
    @classmethod
    def _split_categories(cls, value: object) -> object:
        if isinstance(value, str):  # "cs.LG,cs.AI" or "cs.LG+cs.AI" from the CLI or env
            return tuple(part for part in re.split(r"[\s,+]+", value) if part)
        return value

    @field_validator("categories")
    @classmethod
    def _check_categories(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for category in value:
            if not _CATEGORY.match(category):
                raise ValueError(f"{category!r} is not an arXiv category (e.g. cs.LG)")
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _check_kind_options(self) -> SourceSpec:
        if self.kind in ("hf_daily", "arxiv", "feed") and self.url is not None:
            _http_url(self.url, "url")
        if self.api_url is not None:
            _http_url(self.api_url, "api_url")
        if self.kind == "feed" and not self.url:
            raise ValueError("a feed source needs a url")
        if self.kind == "file" and not self.url:
            raise ValueError("a file source needs a url (the path of a listing file)")
        if self.kind == "arxiv" and not self.categories:
            raise ValueError("an arxiv source needs categories, e.g. cs.LG,cs.AI")
        if self.categories and self.kind != "arxiv":
            raise ValueError("categories apply to arxiv sources only")
        if self.format != "auto" and self.kind != "file":
            raise ValueError("format applies to file sources only")
        if (self.cross or self.enrich or self.api_url) and self.kind != "arxiv":
            raise ValueError("cross, enrich and api_url apply to arxiv sources only")
        if self.lookback_days is not None and self.kind != "hf_daily":
            raise ValueError("lookback_days applies to hf_daily sources only")
        return self

    # Derived values -------------------------------------------------------------------

    @property
    def resolved_url(self) -> str:
        """The URL (or path) this source reads, with the kind's default filled in."""
        if self.kind == "hf_daily":
            return self.url or HF_DAILY_URL
        if self.kind == "arxiv":
            base, query = (self.url or ARXIV_LISTING_URL).rstrip("/"), "+".join(self.categories)
            return base if base.endswith(f"/{query}") else f"{base}/{query}"
        return self.url or ""

    @property
    def resolved_api_url(self) -> str:
        return self.api_url or ARXIV_API_URL

    @property
    def resolved_lookback_days(self) -> int:
        return DEFAULT_LOOKBACK_DAYS if self.lookback_days is None else self.lookback_days

    def options(self) -> dict[str, object]:
        """The fields other than name, kind and url that differ from their defaults."""
        return self.model_dump(exclude={"name", "kind", "url"}, exclude_defaults=True)


def absolute_location(location: str, base: Path) -> str:
    """A file source's path made absolute against ``base`` (``~`` expanded); ``file://``
    URLs and absolute paths are kept as they are."""
    if location.startswith("file:"):
        return location
    path = Path(location).expanduser()
    return location if path.is_absolute() else os.path.normpath(base.absolute() / path)


def anchored(spec: SourceSpec, base: Path) -> SourceSpec:
    """``spec`` with a relative ``file`` path resolved against ``base``, so it reads the same
    file whatever directory a later fetch runs in."""
    if spec.kind != "file" or not spec.url:
        return spec
    return spec.model_copy(update={"url": absolute_location(spec.url, base)})


def build_spec(**fields: object) -> SourceSpec:
    """A validated spec (None values left out), or a one-line ConfigError naming the field."""
    try:
        return SourceSpec.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        name = fields.get("name")
        subject = f"source {name!r}" if isinstance(name, str) else "source"
        raise ConfigError(
            f"invalid {subject}: " + (f"{where}: {message}" if where else message)
        ) from None
