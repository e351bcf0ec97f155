"""Hugging Face Daily Papers JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import ListingFormatError, ListingParseError
from digest.parsers import parse_listing, read_listing_file

DATA = Path(__file__).parent / "data" / "listings" / "hf"


def test_full_item_maps_every_field() -> None:
    listing = read_listing_file(DATA / "daily_papers.json")
    assert listing.format == "hf-json"
    record = listing.records[0]
    # The top-level title wins and the wrapped paper.title would collapse to the same line.
    assert record.title == (
        "Breaking the Memory Barrier: Near Infinite Batch Size Scaling for Contrastive Loss"
    )
    assert record.abstract.startswith("Contrastive loss is a powerful approach for representation")
    assert "\n" not in record.abstract and "  " not in record.abstract
    assert record.authors == ("Zesen Cheng", "Hang Zhang", "Lidong Bing")  # hidden kept
    assert record.arxiv_id == "2410.17243" and record.key == "arxiv:2410.17243"
    assert record.published == datetime(2024, 10, 22, 17, 59, 30, tzinfo=UTC)
    assert record.listed_at == datetime(2024, 10, 25, 0, 57, 9, 392000, tzinfo=UTC)
    assert (record.upvotes, record.comments) == (64, 3)
    assert record.github_repo == "https://github.com/DAMO-NLP-SG/Inf-CLIP"
    assert record.github_stars == 120
    assert record.project_page == "https://damo-nlp-sg.github.io/Inf-CLIP/"
    assert record.thumbnail is not None and record.thumbnail.endswith("/2410.17243.png")
    assert record.keywords == ("contrastive loss", "tile-based computation", "ring topology")
    assert record.ai_summary is not None and record.ai_summary.startswith("Inf-CL")
    assert record.organization == "DAMO Academy NLP Singapore"
    assert record.url == "https://huggingface.co/papers/2410.17243"
    assert record.pdf_url == "https://arxiv.org/pdf/2410.17243"
    assert record.external_id == "2410.17243"


def test_missing_and_wrongly_typed_optional_fields_are_ignored() -> None:
    _, sparse, odd = read_listing_file(DATA / "daily_papers.json").records
    assert sparse.github_repo is None and sparse.keywords == () and sparse.thumbnail is None
    assert sparse.listed_at == datetime(2024, 10, 25, 1, 10, tzinfo=UTC)
    assert sparse.abstract.startswith("Machine unlearning")  # from paper.summary
    assert odd.title == "Pangea: A Fully Open Multilingual Multimodal LLM for 39 Languages"
    assert odd.upvotes is None  # "many"
    assert odd.authors == () and odd.keywords == () and odd.organization is None
    assert odd.github_repo is None  # javascript: URL refused
    assert odd.github_stars is None  # negative
    assert odd.listed_at is None and odd.comments is None


def test_single_paper_object_and_empty_day() -> None:
    (paper,) = read_listing_file(DATA / "paper.json").records
    assert paper.key == "arxiv:2002.05709" and len(paper.authors) == 4
    assert read_listing_file(DATA / "weekend.json").records == []


def test_error_object_is_a_parse_error_with_its_text() -> None:
    with pytest.raises(ListingParseError) as caught:
        read_listing_file(DATA / "error.json")
    reason = "Invalid date: the date must not be in the future"
    assert str(caught.value) == f"{DATA / 'error.json'}: Hugging Face error: {reason}"


def parse(value: object) -> list:
    return parse_listing(json.dumps(value).encode(), name="day.json").records


def test_item_without_id_or_title_is_named_by_index() -> None:
    good = {"paper": {"id": "2410.00001", "title": "Fine"}}
    with pytest.raises(ListingParseError, match=r"^day\.json: item 1: no paper id and no title$"):
        parse([good, {"paper": {"summary": "orphan"}}])
    with pytest.raises(ListingParseError, match=r"item 0: paper 2410\.00002 has no title"):
        parse([{"paper": {"id": "2410.00002", "title": "  \n "}}])


def test_item_without_id_is_keyed_by_title() -> None:
    (record,) = parse([{"title": "Only a Title", "paper": {"summary": "text"}}])
    assert record.arxiv_id is None and record.key.startswith("title:")


def test_titles_are_one_line_of_text() -> None:
    (record,) = parse(
        [
            {
                "paper": {
                    "id": "2410.00003",
                    "title": "Evil\r\nBcc: x@example.org <img src=x onerror=alert(1)>Title\x00",
                }
            }
        ]
    )
    assert record.title == "Evil Bcc: x@example.org Title"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 2], "item 0: expected an object, found a number"),
        (
            [{"paper": {"id": "1", "title": "ok"}}, "text"],
            "item 1: expected an object, found a string",
        ),
    ],
)
def test_wrong_item_shapes(value: object, message: str) -> None:
    with pytest.raises(ListingParseError, match=message):
        parse(value)


def test_wrong_document_shapes() -> None:
    with pytest.raises(ListingFormatError, match="JSON of an unknown shape"):
        parse({"papers": []})
    with pytest.raises(ListingParseError, match="expected a list, found a string"):
        parse_listing(b'"hello"', fmt="hf-json", name="x.json")
    with pytest.raises(ListingParseError, match="an object with keys papers"):
        parse_listing(b'{"papers": []}', fmt="hf-json", name="x.json")
