"""Local imitations of the listing services, for :class:`~digest.testing.http.HttpTestServer`.

They follow ``docs/sources.md`` (the real formats and quirks) closely enough to test a
client end to end: Hugging Face's ``/api/daily_papers`` (``date``, ``limit`` ≤ 100, ``p``
pages announced by ``Link: rel="next"``, ``[]`` past the end and on weekends, 400 for a
future date, an optional bearer token), arXiv's listing feeds (RSS and Atom with
``new``/``cross``/``replace`` items, 400 + ``Feed error for query`` for an unknown
category) and the arXiv query API (``id_list``, optionally answering short first)::

    hf = HfDailyPapersApi(today=date(2024, 10, 25))
    hf.add("2024-10-24", *(hf_item(f"2410.{n:05d}", f"Paper {n}") for n in range(230)))
    server.route(HF_PATH, hf)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from xml.sax.saxutils import escape

from digest.testing.http import Reply, Request

__all__ = [
    "HF_PATH",
    "ArxivApi",
    "ArxivItem",
    "ArxivListings",
    "HfDailyPapersApi",
    "arxiv_api_feed",
    "arxiv_listing",
    "hf_item",
]

HF_PATH = "/api/daily_papers"
_MAX_LIMIT = 100


def _wrapped(text: str) -> str:
    """Hard-wrap like the real payloads do (a newline and two spaces mid-title)."""
    words = text.split(" ")
    middle = len(words) // 2
    return " ".join(words[:middle]) + "\n  " + " ".join(words[middle:]) if middle else text


def hf_item(
    arxiv_id: str,
    title: str,
    *,
    summary: str = "An abstract.",
    authors: Sequence[str] = ("Ada Lovelace",),
    published: str = "2024-10-22T17:59:30.000Z",
    listed: str = "2024-10-25T00:57:09.392Z",
    upvotes: int = 0,
    github_repo: str | None = None,
    github_stars: int | None = None,
    project_page: str | None = None,
    ai_keywords: Sequence[str] = (),
    ai_summary: str | None = None,
) -> dict[str, Any]:
    """One item of the daily_papers list, in the real shape (optional fields when given)."""
    paper: dict[str, Any] = {
        "id": arxiv_id,
        "title": _wrapped(title),
        "summary": summary.replace(". ", ".\n"),
        "authors": [
            {"_id": f"a{n}", "name": name, "hidden": False} for n, name in enumerate(authors)
        ],
        "publishedAt": published,
        "upvotes": upvotes,
        "discussionId": f"d{arxiv_id}",
        "submittedOnDailyAt": listed,
    }
    optional = {
        "githubRepo": github_repo,
        "githubStars": github_stars,
        "projectPage": project_page,
        "ai_summary": ai_summary,
        "ai_keywords": list(ai_keywords) or None,
    }
    paper.update({key: value for key, value in optional.items() if value is not None})
    return {
        "paper": paper,
        "publishedAt": listed,
        "title": title,
        "summary": summary,
        "thumbnail": f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{arxiv_id}.png",
        "mediaUrls": [],
        "numComments": 0,
        "submittedBy": {"name": "akhaliq", "fullname": "AK"},
    }


class HfDailyPapersApi:
    """``GET /api/daily_papers`` as Hugging Face serves it. ``days`` may grow between calls."""

    def __init__(self, *, today: date, token: str | None = None, links: bool = True) -> None:
        self.today, self.token = today, token
        self.links = links  # False: no Link header, clients must page on by ``p`` alone
        self.days: dict[str, list[dict[str, Any]]] = {}

    def add(self, day: date | str, *items: dict[str, Any]) -> None:
        """Publish more papers on ``day`` (a partial batch completed later)."""
        self.days.setdefault(str(day), []).extend(items)

    def __call__(self, request: Request) -> Reply:
        if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply.json({"error": "Invalid credentials in Authorization header"}, 401)
        query = request.query
        try:
            limit, page = int(query.get("limit", "50")), int(query.get("p", "0"))
            day = date.fromisoformat(query.get("date", str(self.today)))
        except ValueError as exc:
            return Reply.json({"error": f"Invalid query: {exc}"}, 400)
        if not 1 <= limit <= _MAX_LIMIT or page < 0:
            return Reply.json({"error": '"limit" must be less than or equal to 100'}, 400)
        if day > self.today:
            return Reply.json({"error": "Date cannot be in the future"}, 400)
        items = self.days.get(str(day), [])
        headers = {}
        if self.links and (page + 1) * limit < len(items):
            base = f"http://{request.headers.get('host', 'localhost')}{request.path}"
            headers["Link"] = f'<{base}?date={day}&limit={limit}&p={page + 1}>; rel="next"'
        return Reply.json(items[page * limit : (page + 1) * limit], headers=headers)


@dataclass(frozen=True)
class ArxivItem:
    """One paper as arXiv's listing and API describe it."""

    arxiv_id: str
    title: str
    abstract: str = "An abstract."
    authors: tuple[str, ...] = ("Ada Lovelace",)
    version: int = 1
    announce_type: str = "new"
    categories: tuple[str, ...] = ("cs.LG",)
    doi: str | None = None
    journal_ref: str | None = None
    published: str = "2024-10-22T17:59:30Z"  # v1 (the API's <published>)


_NS_ARXIV = (
    'xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/"'
)
_NS = _NS_ARXIV + ' xmlns:atom="http://www.w3.org/2005/Atom"'
_DATE = "Fri, 25 Oct 2024 00:00:00 -0400"


def _extras(item: ArxivItem) -> str:
    doi = f"<arxiv:DOI>{escape(item.doi)}</arxiv:DOI>" if item.doi else ""
    ref = item.journal_ref
    return doi + (
        f"<arxiv:journal_reference>{escape(ref)}</arxiv:journal_reference>" if ref else ""
    )


def _rss_item(item: ArxivItem) -> str:
    vid = f"{item.arxiv_id}v{item.version}"
    cats = "".join(f"<category>{escape(c)}</category>" for c in item.categories)
    return (
        f"<item><title>{escape(_wrapped(item.title))}</title>"
        f"<link>https://arxiv.org/abs/{item.arxiv_id}</link>"
        f"<description>arXiv:{vid} Announce Type: {item.announce_type} \nAbstract: "
        f"{escape(item.abstract)}</description>"
        f'<guid isPermaLink="false">oai:arXiv.org:{vid}</guid>{cats}<pubDate>{_DATE}</pubDate>'
        f"<arxiv:announce_type>{item.announce_type}</arxiv:announce_type>"
        f"<dc:creator>{escape(', '.join(item.authors))}</dc:creator>{_extras(item)}</item>"
    )


def _atom_entry(item: ArxivItem) -> str:
    vid = f"{item.arxiv_id}v{item.version}"
    cats = "".join(f'<category term="{escape(c)}"/>' for c in item.categories)
    return (
        f"<entry><id>oai:arXiv.org:{vid}</id><title>{escape(_wrapped(item.title))}</title>"
        f"<updated>2024-10-25T04:00:00Z</updated>"
        f'<link href="https://arxiv.org/abs/{item.arxiv_id}" rel="alternate" type="text/html"/>'
        f"<summary>arXiv:{vid} Announce Type: {item.announce_type} \nAbstract: "
        f"{escape(item.abstract)}</summary>{cats}<published>2024-10-25T00:00:00-04:00</published>"
        f"<arxiv:announce_type>{item.announce_type}</arxiv:announce_type>"
        f"<dc:creator>{escape(', '.join(item.authors))}</dc:creator>{_extras(item)}</entry>"
    )


def arxiv_listing(query: str, items: Iterable[ArxivItem], *, atom: bool = False) -> bytes:
    """An ``rss.arxiv.org/rss|atom/QUERY`` listing (an empty one on weekends)."""
    title = f"{escape(query)} updates on arXiv.org"
    link = f"https://rss.arxiv.org/{'atom' if atom else 'rss'}/{escape(query)}"
    if atom:
        body = "".join(_atom_entry(item) for item in items)
        doc = (
            f'<feed xmlns="http://www.w3.org/2005/Atom" {_NS_ARXIV}>'
            f'<title>{title}</title><id>{link}</id><link href="{link}" rel="self"/>'
            f"<updated>2024-10-25T04:00:00Z</updated>{body}</feed>"
        )
    else:
        body = "".join(_rss_item(item) for item in items)
        doc = (
            f'<rss {_NS} version="2.0"><channel><title>{title}</title><link>{link}</link>'
            f"<description>{title}</description><pubDate>{_DATE}</pubDate>{body}</channel></rss>"
        )
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + doc.encode()


def _feed_error(query: str) -> bytes:
    title = f"Feed error for query: {escape(query)}"
    return (
        f"<?xml version='1.0' encoding='UTF-8'?>\n<rss {_NS} version=\"2.0\"><channel>"
        f"<title>{title}</title><link>http://rss.arxiv.org/rss/{escape(query)}</link>"
        f"<description>{title}</description></channel></rss>"
    ).encode()


class ArxivListings:
    """``rss.arxiv.org``: route it at ``/rss/`` and ``/atom/``; joins categories with ``+``."""

    def __init__(self, listings: dict[str, list[ArxivItem]]) -> None:
        self.listings = listings  # category → today's items (empty list: a quiet day)

    def __call__(self, request: Request) -> Reply:
        kind, _, query = request.path.strip("/").partition("/")
        categories = [part for part in query.split("+") if part]
        unknown = [c for c in categories if c not in self.listings]
        if not categories or unknown:
            return Reply(400, _feed_error(query), content_type="application/xml")
        items: dict[str, ArxivItem] = {}
        for category in categories:
            for item in self.listings[category]:
                items.setdefault(item.arxiv_id, item)
        kind_type = "application/atom+xml" if kind == "atom" else "application/rss+xml"
        body = arxiv_listing(query, items.values(), atom=kind == "atom")
        return Reply(200, body, content_type=kind_type)


def arxiv_api_feed(items: Iterable[ArxivItem]) -> bytes:
    """A query API answer (``export.arxiv.org/api/query``) holding these papers."""
    entries = []
    for item in items:
        vid = f"{item.arxiv_id}v{item.version}"
        authors = "".join(f"<author><name>{escape(a)}</name></author>" for a in item.authors)
        cats = "".join(f'<category term="{escape(c)}"/>' for c in item.categories)
        doi = f"<arxiv:doi>{escape(item.doi)}</arxiv:doi>" if item.doi else ""
        ref = item.journal_ref
        ref_xml = f"<arxiv:journal_ref>{escape(ref)}</arxiv:journal_ref>" if ref else ""
        entries.append(
            f"<entry><id>http://arxiv.org/abs/{vid}</id><updated>2024-10-25T09:00:00Z</updated>"
            f"<published>{item.published}</published><title>{escape(item.title)}</title>"
            f"<summary>{escape(item.abstract)}</summary>{authors}{doi}{ref_xml}"
            f'<link href="http://arxiv.org/abs/{vid}" rel="alternate" type="text/html"/>'
            f'<link title="pdf" href="http://arxiv.org/pdf/{vid}" rel="related"/>'
            f'<arxiv:primary_category term="{escape(item.categories[0])}"/>{cats}</entry>'
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" '
        'xmlns:arxiv="http://arxiv.org/schemas/atom"><title>ArXiv Query</title>'
        "<id>http://arxiv.org/api/q</id><updated>2024-10-25T00:00:00-04:00</updated>"
        f"<opensearch:totalResults>{len(entries)}</opensearch:totalResults>"
        f"{''.join(entries)}</feed>"
    ).encode()


class ArxivApi:
    """``/api/query?id_list=…``; answers ``short`` times with the last paper missing first."""

    def __init__(self, papers: Iterable[ArxivItem], *, short: int = 0) -> None:
        self.papers = {paper.arxiv_id: paper for paper in papers}
        self.short = short

    def __call__(self, request: Request) -> Reply:
        ids = [part for part in request.query.get("id_list", "").split(",") if part]
        found = [self.papers[arxiv_id] for arxiv_id in ids if arxiv_id in self.papers]
        if self.short > 0 and found:
            self.short -= 1
            found = found[:-1]
        return Reply(200, arxiv_api_feed(found), content_type="application/atom+xml")
