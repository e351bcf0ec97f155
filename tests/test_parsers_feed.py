"""Generic RSS/Atom feeds read with feedparser."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import ListingParseError
from digest.parsers import parse_listing, read_listing_file
from digest.store.identity import title_hash

DATA = Path(__file__).parent / "data" / "listings" / "feeds"


def test_journal_rss_with_html_summaries() -> None:
    listing = read_listing_file(DATA / "journal.rss.xml")
    assert listing.format == "feed"
    assert listing.title == "Nature Machine Intelligence"
    first, second, editorial = listing.records
    assert first.title == "Learning the language of E. coli promoters"
    assert first.abstract.endswith(
        "A transformer trained on bacterial genomes predicts promoter strength & design rules."
    )
    for text in (first.abstract, second.abstract, second.title):
        assert "<" not in text and "&amp;" not in text and "alert" not in text
    assert (
        first.doi == "10.1038/s42256-024-00901-2" and first.key == "doi:10.1038/s42256-024-00901-2"
    )
    assert first.authors == ("Ana Ruiz", "Tomáš Novák")
    assert first.journal_ref == "Nature Machine Intelligence"
    assert first.published == datetime(2024, 10, 24, tzinfo=UTC)
    assert second.title == "Robust H2O property prediction with graph networks"
    assert (
        second.abstract
        == "Graph networks predict the properties of water clusters. Second paragraph."
    )  # nbsp collapsed
    assert editorial.doi is None and editorial.key.startswith("title:")
    assert editorial.external_id == "https://www.nature.com/articles/s42256-024-00950-7"


def test_atom_blog_feed() -> None:
    listing = read_listing_file(DATA / "blog.atom.xml")
    assert listing.format == "feed"
    assert listing.title == "Lil'Log & Friends"
    post, notes, untitled = listing.records
    assert post.title == "Reward Hacking in Reinforcement Learning"
    assert post.abstract.startswith("Reward hacking occurs")
    assert post.published == datetime(2024, 10, 20, 7, 30, tzinfo=UTC)
    assert post.authors == ("Lilian Weng",) and post.categories == ("rl", "llm")
    assert post.external_id == "tag:blog.example.org,2024-10-20:/posts/reward-hacking"
    assert post.url == "https://blog.example.org/posts/2024-10-20-reward-hacking/"
    # A post whose id is an arXiv abstract page is that paper.
    assert (notes.arxiv_id, notes.version, notes.key) == ("2410.17243", 2, "arxiv:2410.17243")
    assert notes.abstract == "Why tiling the contrastive loss saves memory."
    assert notes.published == datetime(2024, 10, 19, 10, tzinfo=UTC)  # only <updated>
    assert untitled.external_id == f"title:{title_hash('Untitled musings')}"
    assert untitled.url is None


def test_entry_without_title_fails_the_whole_feed() -> None:
    data = b"""<rss version="2.0"><channel><title>t</title>
    <item><title>Fine</title></item><item><description>no title</description></item>
    </channel></rss>"""
    with pytest.raises(ListingParseError, match=r"^f\.xml: entry 1: no title$"):
        parse_listing(data, name="f.xml")


def test_rdf_feed() -> None:
    data = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
  xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://journal.example.org/"><title>Journal</title></channel>
  <item rdf:about="https://doi.org/10.5555/12345678">
    <title>An RSS 1.0 Item</title><link>https://doi.org/10.5555/12345678</link>
    <dc:date>2024-10-01T00:00:00Z</dc:date>
  </item>
</rdf:RDF>"""
    listing = parse_listing(data, name="rdf.xml")
    assert listing.format == "feed"
    (record,) = listing.records
    assert record.doi == "10.5555/12345678"
    assert record.published == datetime(2024, 10, 1, tzinfo=UTC)


def test_explicit_feed_format_on_non_feed_xml() -> None:
    with pytest.raises(ListingParseError, match="not an RSS or Atom feed"):
        parse_listing(b"<html><body><p>hi</p></body></html>", fmt="feed", name="page.html")
