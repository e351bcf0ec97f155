"""Text cleaning helpers: TeX accents, author strings, HTML to text, dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.parsers.common import html_to_text, http_url, parse_datetime, plain_text
from digest.parsers.tex import decode_tex, split_creators


@pytest.mark.parametrize(
    ("tex", "text"),
    [
        (r"Andr\'e", "André"),
        (r"Andr\'{e}", "André"),
        (r"G{\"o}del", "Gödel"),
        (r"\`a la \^ete", "à la ête"),
        (r"Fran\c{c}ois", "François"),
        (r"Fran{\c c}ois", "François"),
        (r"\v{S}koda \v Cech", "Škoda Čech"),
        (r"Mu\~noz", "Muñoz"),
        (r"\=a", "ā"),
        (r"Mar\'{\i}a", "María"),
        (r"S{\o}ren Stra\ss e", "Søren Straße"),
        (r"Erd\H{o}s", "Erdős"),
        (r"R \& D", "R & D"),
        (r"$\mathbb{R}^n$ and $\omega \in \Omega$", r"$\mathbb{R}^n$ and $\omega \in \Omega$"),
        ("plain", "plain"),
    ],
)
def test_decode_tex(tex: str, text: str) -> None:
    assert decode_tex(tex) == text


def test_split_creators_drops_affiliations_and_braces() -> None:
    creators = r"A. B\"ohm (Univ. of X, Dept. (Physics)), {Van der Berg}, Jr., C. D and E. F"
    assert split_creators(creators) == ["A. Böhm", "Van der Berg", "Jr.", "C. D", "E. F"]
    assert split_creators("") == []


def test_html_to_text() -> None:
    html = "<p>H<sub>2</sub>O &amp; CO<sub>2</sub></p><p>Next<br>line</p><style>p{}</style>"
    assert html_to_text(html) == "H2O & CO2 Next line"
    assert html_to_text("&lt;b&gt;bold&lt;/b&gt;") == "bold"  # escaped markup is not revived
    assert html_to_text(None) == ""


def test_plain_text_keeps_literal_characters() -> None:
    assert plain_text("a < b && c > d") == "a < b && c > d"
    assert plain_text("AT&amp;T") == "AT&amp;T"  # plain-text sources: entities are text
    assert plain_text("x\u202ey\u200bz\tw") == "x y z w"


def test_http_url() -> None:
    assert http_url(" https://example.org/a?b=c ") == "https://example.org/a?b=c"
    for bad in ("javascript:alert(1)", "//example.org", "https://exa mple.org", "data:x", 5, None):
        assert http_url(bad) is None


def test_parse_datetime() -> None:
    utc = datetime(2024, 10, 25, 4, tzinfo=UTC)
    assert parse_datetime("Fri, 25 Oct 2024 00:00:00 -0400") == utc
    assert parse_datetime("2024-10-25T00:00:00-04:00") == utc
    assert parse_datetime("2024-10-25T04:00:00.000Z") == utc
    assert parse_datetime("2024-10-25T04:00:00") == utc  # naive means UTC
    for bad in ("yesterday", "", None, 20241025):
        assert parse_datetime(bad) is None
