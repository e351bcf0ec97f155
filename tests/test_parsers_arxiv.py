"""arXiv listing feeds (RSS, Atom) and the export query API."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import ListingParseError
from digest.parsers import read_listing_file

DATA = Path(__file__).parent / "data" / "listings" / "arxiv"
ANNOUNCED = datetime(2024, 10, 25, 4, tzinfo=UTC)  # Fri, 25 Oct 2024 00:00:00 -0400


def test_rss_listing() -> None:
    listing = read_listing_file(DATA / "cs.LG.rss.xml")
    assert listing.format == "arxiv-rss"
    assert listing.title == "cs.LG updates on arXiv.org"
    new, cross, replace, replace_cross = listing.records
    assert new.title == (
        "Breaking the Memory Barrier: Near Infinite Batch Size Scaling for Contrastive Loss"
    )
    assert new.abstract.startswith("Contrastive loss is a powerful approach")
    assert "Announce Type" not in new.abstract and "\n" not in new.abstract
    assert (new.arxiv_id, new.version, new.announce_type) == ("2410.17243", 1, "new")
    assert new.external_id == "oai:arXiv.org:2410.17243v1"
    assert new.url == "https://arxiv.org/abs/2410.17243"
    assert new.pdf_url == "https://arxiv.org/pdf/2410.17243v1"
    assert new.categories == ("cs.CV", "cs.LG")
    assert new.published == new.listed_at == ANNOUNCED
    assert new.authors[:3] == ("Zesen Cheng", "Hang Zhang", "Kehan Li")
    assert len(new.authors) == 9  # "(DAMO Academy, Alibaba Group)" did not split a name

    assert cross.announce_type == "cross"
    assert cross.authors == (
        "André Gonçalves",
        "Jiří Matějka",
        "Jürgen Schmidhuber",
        "François Fleuret",
        "Nadia El Mekki",
    )
    assert "p<2" in cross.abstract  # an escaped < in the XML is the literal character

    assert (replace.announce_type, replace.version) == ("replace", 3)
    assert replace.published is None  # the announcement date is not v3's paper date
    assert replace.listed_at == ANNOUNCED
    assert replace.title == "Graph Neural Networks for Schrödinger Bridge Problems"
    assert replace.abstract.endswith("the Schrödinger bridge problem on graphs.")
    assert replace.authors == ("María López-García", "Søren Hauberg")
    assert replace.doi == "10.1109/tpami.2024.3391234"
    assert replace.journal_ref is not None and replace.journal_ref.startswith("IEEE Transactions")
    assert replace.key == "arxiv:2302.04555"

    assert replace_cross.announce_type == "replace-cross"
    assert (replace_cross.arxiv_id, replace_cross.version) == ("hep-th/9901001", 2)


def test_atom_listing_matches_rss() -> None:
    listing = read_listing_file(DATA / "cs.LG.atom.xml")
    assert listing.format == "arxiv-atom"
    new, replace, cross = listing.records
    assert new.title.endswith("for Contrastive Loss") and new.version == 1
    assert new.authors == ("Zesen Cheng", "Hang Zhang", "Kehan Li")
    assert new.published == ANNOUNCED
    assert replace.announce_type == "replace" and replace.doi == "10.1109/tpami.2024.3391234"
    assert replace.journal_ref == "IEEE TPAMI 46 (2024)"
    assert cross.categories == ("math.OC", "cs.LG")
    assert cross.authors == ("André Gonçalves", "Jürgen Schmidhuber")


def test_weekend_listing_is_empty_not_an_error() -> None:
    listing = read_listing_file(DATA / "weekend.rss.xml")
    assert (listing.format, listing.records) == ("arxiv-rss", [])


def test_feed_error_for_unknown_category() -> None:
    with pytest.raises(ListingParseError, match=r"Feed error for query: cs\.XX"):
        read_listing_file(DATA / "feed_error.rss.xml")


def test_api_results() -> None:
    listing = read_listing_file(DATA / "api_query.atom.xml")
    assert listing.format == "arxiv-api"
    inf_cl, simclr = listing.records
    assert (inf_cl.arxiv_id, inf_cl.version) == ("2410.17243", 2)
    assert inf_cl.title.endswith("Scaling for Contrastive Loss")
    assert inf_cl.published == datetime(2024, 10, 22, 17, 59, 30, tzinfo=UTC)
    assert inf_cl.extra["updated"] == "2024-10-28T09:12:44Z"
    assert inf_cl.authors == ("Zesen Cheng", "Hang Zhang", "Lidong Bing")
    assert inf_cl.categories == ("cs.CV", "cs.LG")
    assert inf_cl.pdf_url == "http://arxiv.org/pdf/2410.17243v2"
    assert inf_cl.extra["comment"].startswith("Code:")
    # The primary category comes first even when listed later among the categories.
    assert simclr.categories == ("cs.LG", "cs.CV", "stat.ML")
    assert simclr.doi == "10.48550/arxiv.2002.05709"
    assert simclr.journal_ref is not None and "PMLR 119" in simclr.journal_ref


def test_api_error_entry() -> None:
    with pytest.raises(
        ListingParseError, match=r"arXiv API error: incorrect id format for 1234\.12345"
    ):
        read_listing_file(DATA / "api_error.atom.xml")
