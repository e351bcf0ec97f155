"""Saved Hugging Face listing pages: the real seeds, a hand-written page, and edge cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import ListingError, ListingFormatError, ListingParseError
from digest.parsers import parse_listing, read_listing_file

DATA = Path(__file__).parent / "data" / "listings"
NOW = datetime(2026, 1, 15, 12, tzinfo=UTC)
HEADER = (
    "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\n"
    "byAK and the research community\n\n"
)
ABSTRACT = (
    "We study how pre-training on unlabeled video changes the sample efficiency of downstream "
    "control policies, and find that a frozen encoder trained with a masked objective matches "
    "a fine-tuned one while using a tenth of the demonstrations. We release code and data."
)


def parse_page(text: str, now: datetime = NOW) -> list:
    return parse_listing(text.encode(), fmt="auto", name="page.txt", now=now).records


def test_the_four_seeds_give_246_records_and_202_papers() -> None:
    records = []
    for path in sorted((DATA / "seeds").glob("*.txt")):
        listing = read_listing_file(path, now=NOW)
        assert listing.format == "hf-page"
        records += listing.records
    assert len(records) == 246
    assert len({record.key for record in records}) == 202
    assert all(record.key.startswith("title:") for record in records)
    assert all(record.title and "\n" not in record.title for record in records)
    assert all(len(record.abstract) > 1000 for record in records)  # every seed block has one


def test_seed_metadata_dates_and_upvotes() -> None:
    listing = read_listing_file(next((DATA / "seeds").glob("002_*.txt")), now=NOW)
    by_title = {record.title: record for record in listing.records}
    omnitab = by_title[
        "OmniTab: Pretraining with Natural and Synthetic Data for Few-shot Table-based "
        "Question Answering"
    ]
    assert omnitab.published == datetime(2022, 7, 7, tzinfo=UTC)
    assert omnitab.upvotes == 0
    assert omnitab.extra == {"author_count": "5"}
    # "Dec 2 3" on a page dated "Dec 8": the page's year, three upvotes.
    pretrain_zero = by_title["PretrainZero: Reinforcement Active Pretraining"]
    assert pretrain_zero.published == datetime(2025, 12, 2, tzinfo=UTC)
    assert pretrain_zero.upvotes == 3
    emulator = by_title[
        "An Emulator for Fine-Tuning Large Language Models using Small Language Models"
    ]
    assert (emulator.published, emulator.upvotes) == (datetime(2023, 10, 19, tzinfo=UTC), 1)
    nvidia = [record for record in listing.records if record.organization == "NVIDIA"]
    assert len(nvidia) == 1
    assert nvidia[0].extra == {"org_handle": "nvidia"}
    assert nvidia[0].published == datetime(2025, 9, 26, tzinfo=UTC)
    assert nvidia[0].upvotes == 4


def test_hand_written_page_with_every_block_shape() -> None:
    listing = read_listing_file(DATA / "pages" / "diffusion_dec8.txt", now=NOW)
    assert listing.format == "hf-page"
    assert listing.title == "Daily Papers"
    titles = [record.title for record in listing.records]
    assert titles == [
        "Latent Consistency Models: Synthesizing High-Resolution Images with Few-Step Inference",
        "Flow · Match: Straight Paths for 3D Shape Generation in 2 Steps",
        "Scaling Rectified Flow Transformers for High-Resolution Image Synthesis",
        "Denoising Diffusion Probabilistic Models",
        "Is Guidance All You Need? Revisiting Classifier-Free Guidance at Scale",
        "SDXL-Turbo 2.0: Adversarial Diffusion Distillation Revisited",
        "Leap-Year Diffusion: Sampling on February 29",
        "One-Step Image Generation with Distribution Matching Distillation",
    ]
    lcm, flow, scaling, ddpm, guidance, turbo, leap, dmd = listing.records
    assert (lcm.published, lcm.upvotes) == (datetime(2023, 10, 6, tzinfo=UTC), 12)
    assert (flow.organization, flow.extra["org_handle"]) == ("Stability AI", "stabilityai")
    assert flow.published == datetime(2025, 11, 30, tzinfo=UTC)  # page "Dec 8" is 2025-12-08
    assert scaling.abstract == "" and scaling.upvotes == 71  # abstract missing, details kept
    assert ddpm.abstract.startswith("We present high quality") and ddpm.published is None
    assert guidance.abstract == "" and guidance.published is None  # a bare title
    assert turbo.abstract.endswith("We revisit its design.")  # a short abstract is still one
    # "Dec 10" cannot be after the page's own date (Dec 8, 2025): it is the year before.
    assert turbo.published == datetime(2024, 12, 10, tzinfo=UTC)
    assert leap.published == datetime(2024, 2, 29, tzinfo=UTC)
    assert dmd.upvotes == 2


def test_dates_without_a_year_are_the_latest_not_after_now() -> None:
    page = HEADER + f"A Title\n\n{ABSTRACT}\n\n  • 3 authors\n·\nDec 20 5\n"
    early_january = datetime(2026, 1, 2, tzinfo=UTC)
    (record,) = parse_page(page, now=early_january)
    assert record.published == datetime(2025, 12, 20, tzinfo=UTC)
    (record,) = parse_page(page, now=datetime(2026, 12, 21, tzinfo=UTC))
    assert record.published == datetime(2026, 12, 20, tzinfo=UTC)


def test_crlf_hard_wrapped_abstract_and_split_metadata() -> None:
    wrapped = ABSTRACT.replace(", and ", ",\nand ")
    page = (
        HEADER + f"First Paper\n\n{wrapped}\n\n  • 2 authors\n\n·\n\nJul 7, 2022\n\nSecond Paper\n"
    )
    first, second = parse_page(page.replace("\n", "\r\n"))
    assert first.abstract == ABSTRACT
    assert first.extra == {"author_count": "2"}
    assert first.published == datetime(2022, 7, 7, tzinfo=UTC)
    assert second.title == "Second Paper" and second.abstract == ""


def test_header_only_page_is_an_empty_listing() -> None:
    assert parse_page(HEADER + "Mar 11\n") == []


def test_markup_and_controls_in_a_page_title_are_cleaned() -> None:
    page = HEADER + f"<b>Bold</b> Claims\x0b About <script>x</script>Models\n\n{ABSTRACT}\n"
    (record,) = parse_page(page)
    assert record.title == "Bold Claims About x Models"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (f"{ABSTRACT}\n\nA Title\n", "line 9: expected a paper title"),
        (
            "A Title\n\n" + ABSTRACT + "\n\n  • 2 authors\n·\nJul 7\n\n" + ABSTRACT,
            "line 17: expected a paper title",
        ),
        ("  • 2 authors\n·\nJul 7, 2022\n", "details without a title"),
        ("A Title\n\n  • 2 authors\n·\nFeb 30, 2022\n", "impossible date"),
        ("A Title\n\nsomething\n·\nnot a date\n", "unrecognised paper details"),
    ],
)
def test_malformed_pages_name_the_line(body: str, message: str) -> None:
    with pytest.raises(ListingParseError, match=message) as caught:
        parse_page(HEADER + body)
    assert str(caught.value).startswith("page.txt: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "data",
    [
        b"Some notes I took\n\nabout papers I liked.\n",
        b"new\n\nSubscribe\n\nA Title\n",  # header words, but not the page's header
        bytes(range(256)) * 4,
    ],
)
def test_text_that_is_not_a_page_is_refused(data: bytes) -> None:
    with pytest.raises(ListingFormatError, match=r"^notes\.txt: cannot detect"):
        parse_listing(data, name="notes.txt")
    with pytest.raises(ListingParseError, match=r"^notes\.txt: "):
        parse_listing(data, fmt="hf-page", name="notes.txt")


def test_binary_after_a_real_header_is_refused() -> None:
    with pytest.raises(ListingError, match="binary control characters"):
        parse_page(HEADER + "A Title\n\n\x00\x01\x02garbage\n")


def test_sentence_like_titles_and_short_abstracts() -> None:
    """Titles may end in a full stop; where a title must come, a short paragraph is one."""
    path = Path(__file__).parent / "data" / "listings" / "pages" / "sentence_titles_nov21.txt"
    listing = read_listing_file(path, now=datetime(2026, 11, 23, tzinfo=UTC))
    titles = [r.title for r in listing.records]
    assert titles == [
        "Scaling Laws for Sparse Mixture-of-Experts Language Models Trained on Trillions of "
        "Tokens Across Many Domains and Languages Worldwide.",
        "Is Attention All You Need? Revisiting Transformers for Time Series",
        "GPT-5 Technical Report",
        "Diffusion Models Beat GANs on Image Synthesis",
        "Self-Supervised Learning Works Better When You Let the Model Choose Its Own Views.",
    ]
    first, _, report, diffusion, views = listing.records
    assert first.abstract.startswith("We study scaling laws") and first.upvotes == 12
    assert first.organization == "NVIDIA"
    assert report.abstract == "" and report.upvotes == 240
    assert diffusion.abstract.startswith("We show that diffusion models")
    assert diffusion.published is None
    assert views.abstract.startswith("Choosing augmentations") and views.upvotes == 0
    assert views.published is not None and views.published.date().isoformat() == "2026-10-30"
