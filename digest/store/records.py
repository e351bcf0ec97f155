"""The normalized paper record every listing parser produces.

A record is what one source said about one paper at one moment. The store turns records
into paper rows (keyed by :func:`digest.identity.canonical_key`) and sightings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from digest.store.identity import canonical_key


@dataclass(frozen=True, slots=True)
class PaperRecord:
    """One paper as a listing describes it. Only ``title`` is required."""

    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    arxiv_id: str | None = None  # bare id without version, e.g. "2410.17243"
    version: int | None = None  # arXiv version number when the source says it
    doi: str | None = None
    url: str | None = None  # landing page (abs page, paper page, entry link)
    pdf_url: str | None = None
    published: datetime | None = None  # the paper's own date (arXiv v1 / entry date), UTC
    listed_at: datetime | None = None  # when the listing added it (HF Daily Papers), UTC
    upvotes: int | None = None
    comments: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    thumbnail: str | None = None
    categories: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()  # e.g. Hugging Face ai_keywords
    ai_summary: str | None = None
    organization: str | None = None
    journal_ref: str | None = None
    announce_type: str | None = None  # arXiv listings: new, cross, replace, replace-cross
    external_id: str | None = None  # the source's own id (guid, oai id, entry id)
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        """The canonical key: ``arxiv:…``, else ``doi:…``, else ``title:…``."""
        return canonical_key(arxiv_id=self.arxiv_id, doi=self.doi, title=self.title)
