"""Hugging Face Daily Papers JSON (``/api/daily_papers``, ``/api/papers/{id}``).

The list items grew fields over the years, so everything except the paper's title (and,
for identity, ``paper.id``) is optional, and an optional field of the wrong type is ignored
rather than fatal. ``paper.publishedAt`` is the arXiv date; the item's own ``publishedAt``
is when the paper was added to Daily Papers.
"""

from __future__ import annotations

import json
from typing import Any

from digest.parsers.common import (
    arxiv_pdf_url,
    http_url,
    listing_error,
    opt_int,
    opt_text,
    parse_datetime,
    plain_text,
    unique,
)
from digest.store.identity import parse_arxiv_id
from digest.store.records import PaperRecord


def load_json(data: bytes, name: str) -> Any:
    """Decode JSON, turning a decoding failure into a one-line ListingParseError."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise listing_error(name, exc.msg, line=exc.lineno, column=exc.colno) from exc
    except UnicodeDecodeError as exc:
        raise listing_error(name, f"not UTF-8 text (byte {exc.start})") from exc
    except RecursionError as exc:  # [[[[…]]]] nested deeper than the decoder can follow
        raise listing_error(name, "JSON nested too deeply") from exc
    except ValueError as exc:  # a number of more than 4,300 digits (int() refuses it)
        raise listing_error(name, "a number with more than 4,300 digits") from exc


def is_hf_json(value: object) -> bool:
    """True for the shapes this module reads: a list, an item, a paper or an error object."""
    if isinstance(value, list):
        return True
    return isinstance(value, dict) and (
        "paper" in value or "error" in value or ("id" in value and "title" in value)
    )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return unique([plain_text(_dict(author).get("name")) for author in value])


def _keywords(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return unique([plain_text(keyword) for keyword in value])


def _organization(*candidates: object) -> str | None:
    for candidate in candidates:
        org = _dict(candidate)
        label = opt_text(org.get("fullname")) or opt_text(org.get("name"))
        if label:
            return label
    return None


def _record(item: object, index: int, name: str) -> PaperRecord:
    if not isinstance(item, dict):
        raise listing_error(name, f"item {index}: expected an object, found {_kind(item)}")
    paper = _dict(item.get("paper"))
    raw_id = opt_text(paper.get("id"))
    title = plain_text(item.get("title")) or plain_text(paper.get("title"))
    if not title:
        detail = f"paper {raw_id} has no title" if raw_id else "no paper id and no title"
        raise listing_error(name, f"item {index}: {detail}")
    parsed = parse_arxiv_id(raw_id) if raw_id else None
    arxiv_id = parsed[0] if parsed else None
    submitter = _dict(item.get("submittedBy"))
    extra = {"submitted_by": label} if (label := opt_text(submitter.get("name"))) else {}
    return PaperRecord(
        title=title,
        abstract=plain_text(paper.get("summary")) or plain_text(item.get("summary")),
        authors=_names(paper.get("authors")),
        arxiv_id=arxiv_id,
        version=parsed[1] if parsed else None,
        url=f"https://huggingface.co/papers/{arxiv_id}" if arxiv_id else None,
        pdf_url=arxiv_pdf_url(arxiv_id) if arxiv_id else None,
        published=parse_datetime(paper.get("publishedAt")),
        listed_at=parse_datetime(item.get("publishedAt"))
        or parse_datetime(paper.get("submittedOnDailyAt")),
        upvotes=opt_int(paper.get("upvotes")),
        comments=opt_int(item.get("numComments")),
        github_repo=http_url(paper.get("githubRepo")),
        github_stars=opt_int(paper.get("githubStars")),
        project_page=http_url(paper.get("projectPage")),
        thumbnail=http_url(item.get("thumbnail")),
        keywords=_keywords(paper.get("ai_keywords")),
        ai_summary=opt_text(paper.get("ai_summary")),
        organization=_organization(paper.get("organization"), item.get("organization")),
        external_id=raw_id,
        extra=extra,
    )


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def parse_hf_value(value: object, name: str) -> list[PaperRecord]:
    """Records of a decoded Daily Papers response, in listing order."""
    if isinstance(value, dict):
        if "error" in value:
            raise listing_error(name, f"Hugging Face error: {plain_text(str(value['error']))}")
        if "paper" not in value and "id" not in value:
            keys = ", ".join(sorted(map(str, value))[:8]) or "none"
            raise listing_error(name, f"not a Daily Papers response: an object with keys {keys}")
        value = [value if "paper" in value else {"paper": value}]  # one /api/papers/{id}
    if not isinstance(value, list):
        raise listing_error(
            name, f"not a Daily Papers response: expected a list, found {_kind(value)}"
        )
    return [_record(item, index, name) for index, item in enumerate(value)]
