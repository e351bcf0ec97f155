"""A listing file on disk as a source (a mirror's drop directory, a saved page).

The path may be plain or a ``file://`` URL. ``digest sources add`` and digest.toml store it
absolute (relative to the working directory, or to digest.toml's directory); a relative path
stored by an older version is still taken from the working directory. The format is detected
unless the source names one. Re-reading an unchanged file is harmless: the diff reports its
papers as seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from digest.config.sources import SourceSpec
from digest.parsers import read_listing_file
from digest.sources.base import Batch, Cursor, FetchContext


def listing_path(location: str) -> Path:
    """The path of a plain path or a ``file://`` URL."""
    if location.startswith("file://"):
        return Path(unquote(urlsplit(location).path))
    return Path(location).expanduser()


class FileSource:
    """The ``file`` source."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec

    def fetch(self, ctx: FetchContext, cursor: Cursor) -> Iterator[Batch]:
        path = listing_path(self.spec.resolved_url)
        listing = read_listing_file(
            path, fmt=self.spec.format, max_bytes=ctx.settings.max_listing_bytes, now=ctx.now
        )
        yield Batch(
            label=f"{path.name}: {len(listing.records)} papers ({listing.format})",
            records=listing.records,
        )
