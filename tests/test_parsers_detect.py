"""Format detection by content, and the public entry points' contracts."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from digest.errors import ListingFormatError, ListingParseError
from digest.parsers import FORMATS, detect_format, parse_listing, read_listing_file

DATA = Path(__file__).parent / "data" / "listings"

EXPECTED = {
    "hf/daily_papers.json": "hf-json",
    "hf/paper.json": "hf-json",
    "hf/error.json": "hf-json",
    "hf/weekend.json": "hf-json",
    "arxiv/cs.LG.rss.xml": "arxiv-rss",
    "arxiv/weekend.rss.xml": "arxiv-rss",
    "arxiv/feed_error.rss.xml": "arxiv-rss",
    "arxiv/cs.LG.atom.xml": "arxiv-atom",
    "arxiv/api_query.atom.xml": "arxiv-api",
    "arxiv/api_error.atom.xml": "arxiv-api",
    "feeds/journal.rss.xml": "feed",
    "feeds/blog.atom.xml": "feed",
    "pages/diffusion_dec8.txt": "hf-page",
    "seeds/000_5987bca98b9578f4.txt": "hf-page",
}


@pytest.mark.parametrize(("relative", "fmt"), sorted(EXPECTED.items()))
def test_detects_every_fixture_by_content(relative: str, fmt: str) -> None:
    data = (DATA / relative).read_bytes()
    assert detect_format(data, filename=relative) == fmt
    assert detect_format(data, filename="misleading.json") == fmt  # content, not extension


def test_every_format_has_a_fixture() -> None:
    assert set(EXPECTED.values()) == set(FORMATS)


def test_bom_and_leading_whitespace_are_tolerated() -> None:
    assert detect_format(b"\xef\xbb\xbf\n  []") == "hf-json"
    data = (DATA / "arxiv" / "cs.LG.rss.xml").read_bytes()
    assert parse_listing(b"\xef\xbb\xbf" + data).format == "arxiv-rss"


@pytest.mark.parametrize(
    "data",
    [b"", b"  \n\t", b"hello world", b"\x89PNG\r\n\x1a\n\x00\x00", b"<html><body>x</body></html>"],
)
def test_undetectable_content_is_a_one_line_format_error(data: bytes) -> None:
    with pytest.raises(ListingFormatError) as caught:
        detect_format(data, filename="in/box.dat")
    message = str(caught.value)
    assert message.startswith("in/box.dat: cannot detect the listing format")
    assert "\n" not in message


def test_explicit_format_skips_detection_but_still_validates() -> None:
    atom = (DATA / "arxiv" / "cs.LG.atom.xml").read_bytes()
    with pytest.raises(ListingParseError, match="not an RSS feed"):
        parse_listing(atom, fmt="arxiv-rss", name="a.xml")
    # Any feed can be read as a generic feed on request.
    listing = parse_listing(atom, fmt="feed", name="a.xml")
    assert listing.format == "feed"
    # The generic reader still recognises the oai identifier, but knows no announce types.
    first = listing.records[0]
    assert (first.key, first.version, first.announce_type) == ("arxiv:2410.17243", 1, None)


def test_unknown_format_name() -> None:
    with pytest.raises(ListingFormatError, match="unknown format 'csv'"):
        parse_listing(b"[]", fmt="csv", name="x")


def test_empty_data_with_explicit_format() -> None:
    with pytest.raises(ListingParseError, match=r"^x\.json: the file is empty$"):
        parse_listing(b"", fmt="hf-json", name="x.json")


def test_gzip_is_unpacked_by_name_and_by_content(tmp_path: Path) -> None:
    data = (DATA / "arxiv" / "cs.LG.rss.xml").read_bytes()
    (tmp_path / "listing.xml.gz").write_bytes(gzip.compress(data))
    (tmp_path / "listing.bin").write_bytes(gzip.compress(data))
    for name in ("listing.xml.gz", "listing.bin"):
        listing = read_listing_file(tmp_path / name)
        assert (listing.format, len(listing.records)) == ("arxiv-rss", 4)


def test_prefixed_atom_root_without_prolog() -> None:
    data = (
        b'<atom:feed xmlns:atom="http://www.w3.org/2005/Atom"><atom:title>T</atom:title>'
        b"<atom:entry><atom:title>Entry</atom:title><atom:id>urn:x:1</atom:id></atom:entry>"
        b"</atom:feed>"
    )
    listing = parse_listing(data, name="p.xml")
    assert (listing.format, [r.title for r in listing.records]) == ("feed", ["Entry"])
