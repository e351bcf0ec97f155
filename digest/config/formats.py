"""Listing format names: what ``--format``, a ``file`` source's ``format`` and the parsers
agree on. Declared here, on the ground floor, so the settings can validate them without
importing the parsers."""

from __future__ import annotations

from typing import Literal, get_args

ListingFormat = Literal["hf-json", "arxiv-rss", "arxiv-atom", "arxiv-api", "feed", "hf-page"]
FORMATS: tuple[str, ...] = get_args(ListingFormat)
FormatChoice = Literal["auto", ListingFormat]  # "auto": detect by content
