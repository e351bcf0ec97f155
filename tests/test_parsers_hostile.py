"""Hostile and malformed input: every failure is a one-line ListingError naming the file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from digest.errors import ListingError, ListingParseError, ListingTooLargeError
from digest.parsers import parse_listing, read_listing_file

DATA = Path(__file__).parent / "data" / "listings"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<rss version="2.0"><channel><title>&lol9;</title></channel></rss>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE feed [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<feed xmlns="http://www.w3.org/2005/Atom"><title>&secret;</title></feed>"""


def one_line_error(data: bytes, *, fmt: str = "auto", name: str = "bad.file") -> str:
    with pytest.raises(ListingError) as caught:
        parse_listing(data, fmt=fmt, name=name)
    message = str(caught.value)
    assert message.startswith(f"{name}: ")
    assert "\n" not in message and "\r" not in message
    return message


def test_truncated_json_names_line_and_column() -> None:
    data = (DATA / "hf" / "daily_papers.json").read_bytes()[:700]
    message = one_line_error(data, name="day.json")
    assert message == "day.json: line 13, column 18: Unterminated string starting at"
    with pytest.raises(ListingParseError):
        parse_listing(data, name="day.json")


def test_deeply_nested_json_is_refused() -> None:
    assert "nested too deeply" in one_line_error(b"[" * 200_000 + b"]" * 200_000)


@pytest.mark.parametrize(
    "relative", ["arxiv/cs.LG.rss.xml", "arxiv/api_query.atom.xml", "feeds/blog.atom.xml"]
)
def test_malformed_xml_names_line_and_column(relative: str) -> None:
    data = (DATA / relative).read_bytes().replace(b"</title>", b"</titel>", 2)
    message = one_line_error(data)
    assert "malformed XML: mismatched tag" in message
    assert ": line " in message and ", column " in message


@pytest.mark.parametrize("fmt", ["auto", "feed", "arxiv-rss", "arxiv-atom", "arxiv-api"])
@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE])
def test_entity_declarations_are_refused(data: bytes, fmt: str) -> None:
    with pytest.raises(ListingParseError, match="refused: XML entity declarations"):
        parse_listing(data, fmt=fmt, name="bomb.xml")


def test_feed_not_well_formed_is_not_silently_bozo() -> None:
    data = b'<rss version="2.0"><channel><title>t</title><item><title>a &nbsp; b</title></item>'
    message = one_line_error(data, fmt="feed")
    assert "undefined entity" in message and "line 1, column" in message


def test_bytes_that_look_like_a_path_are_never_opened() -> None:
    # feedparser would open a filename or URL passed as bytes; we pass it a stream.
    message = one_line_error(b"/etc/hostname", fmt="feed")
    assert "malformed XML" in message


def test_control_characters_and_markup_in_arxiv_titles() -> None:
    data = (
        (DATA / "arxiv" / "cs.LG.rss.xml")
        .read_bytes()
        .replace(
            b"<title>Old-Style Identifiers Still Circulate</title>",
            b"<title>Old-Style&#13;&#10;Bcc: victim@example.org "
            b"&lt;script&gt;alert(1)&lt;/script&gt; Identifiers\xe2\x80\xae</title>",
        )
    )
    title = parse_listing(data).records[-1].title
    assert title == "Old-Style Bcc: victim@example.org alert(1) Identifiers"


def test_feed_entry_html_cannot_smuggle_markup() -> None:
    data = b"""<rss version="2.0"><channel><title>t</title><item>
    <title>&lt;img src=x onerror=alert(1)&gt;Title &amp;lt;b&amp;gt;</title>
    <description>&lt;p&gt;Text &amp;lt;script&amp;gt;alert(2)&amp;lt;/script&amp;gt;&lt;/p&gt;
    </description>
    </item></channel></rss>"""
    (record,) = parse_listing(data, name="f.xml").records
    assert record.title == "Title"
    assert record.abstract == "Text alert(2)"


def test_item_without_any_arxiv_identifier() -> None:
    data = (DATA / "arxiv" / "cs.LG.rss.xml").read_bytes()
    for old in (
        b"oai:arXiv.org:hep-th/9901001v2",
        b"arXiv:hep-th/9901001v2",
        b"https://arxiv.org/abs/hep-th/9901001",
    ):
        data = data.replace(old, b"unknown")
    assert "item 3: no arXiv identifier" in one_line_error(data)


def test_binary_garbage_with_an_explicit_format() -> None:
    garbage = bytes(range(256)) * 16
    for fmt in ("hf-json", "arxiv-rss", "feed", "hf-page"):
        one_line_error(garbage, fmt=fmt)


def test_oversize_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"[" + b" " * 2_000 + b"]")
    with pytest.raises(
        ListingTooLargeError, match=r"big\.json: the file is larger than the limit of 1,000 bytes"
    ):
        read_listing_file(path, max_bytes=1_000)
    assert read_listing_file(path, max_bytes=10_000).records == []


def test_gzip_bomb_is_refused_while_decompressing(tmp_path: Path) -> None:
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(gzip.compress(b"[" + b" " * 50_000_000 + b"]", compresslevel=9))
    assert path.stat().st_size < 100_000
    with pytest.raises(ListingTooLargeError, match="decompressed listing is larger than"):
        read_listing_file(path, max_bytes=1_000_000)


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut.json.gz"
    path.write_bytes(gzip.compress(b"[]" * 1000)[:20])
    with pytest.raises(ListingParseError, match="corrupt gzip data"):
        read_listing_file(path)


def test_unreadable_file_is_a_listing_error(tmp_path: Path) -> None:
    with pytest.raises(ListingError, match=r"missing\.json: cannot read: No such file"):
        read_listing_file(tmp_path / "missing.json")
    with pytest.raises(ListingError, match="cannot read"):
        read_listing_file(tmp_path)


def test_file_name_with_a_newline_still_gives_one_line(tmp_path: Path) -> None:
    path = tmp_path / "evil\nname.json"
    path.write_bytes(b"[{")
    with pytest.raises(ListingParseError) as caught:
        read_listing_file(path)
    assert "\n" not in str(caught.value) and "evil name.json: line 1, column 3" in str(caught.value)
