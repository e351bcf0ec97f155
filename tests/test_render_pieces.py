"""Rendering from per-paper pieces gives exactly what the full templates give.

The shipped templates render from pieces (the HTML item once per paper and position kind,
the text item once per paper and number width); every email must equal the full render, and
its quoted-printable bodies made from chunks must equal ``qp_body`` of the whole text.
Templates the analysis cannot prove safe render in full.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from jinja2 import Environment, StrictUndefined
from render_fixtures import HOSTILE, NORMAL, digest_view
from test_render_cache import WORDS, random_views

from digest.delivery.qp import qp_body, qp_lines
from digest.render import pieces
from digest.render.email import EmailRenderer, RenderedEmail
from digest.render.pieces import Fresh, PieceRenderer, item_values
from digest.render.views import DigestView


def full(renderer: EmailRenderer, view: DigestView) -> RenderedEmail:
    return renderer._render_full(view)


def assert_same(renderer: EmailRenderer, view: DigestView, *, pieces: bool = True) -> None:
    """The email equals the full render; from pieces (its chunks given) unless not ``pieces``
    (an HTML part over the size budget renders in full, to leave items out)."""
    rendered = renderer.render(view)
    reference = full(renderer, view)
    assert rendered == reference  # subject, html, text
    parts = ((rendered.html, rendered.html_lines), (rendered.text, rendered.text_lines))
    for text, chunks in parts:
        if not pieces:
            assert chunks is None
            continue
        assert chunks is not None
        assert "\n".join(chunks) == text.removesuffix("\n")
        assert qp_lines(chunks) == qp_body(text)


def test_shipped_templates_render_from_pieces() -> None:
    assert EmailRenderer().renders_pieces == (True, True)


def test_random_digests_equal_the_full_render() -> None:
    renderer = EmailRenderer()
    for view in random_views(300, seed=21) + random_views(100, seed=21):  # again: warm
        rendered = renderer.render(view)
        assert rendered == full(renderer, view)
        if rendered.html_lines is not None:
            assert qp_lines(rendered.html_lines) == qp_body(rendered.html)
        if rendered.text_lines is not None:
            assert qp_lines(rendered.text_lines) == qp_body(rendered.text)


@pytest.mark.parametrize("count", [0, 1, 2, 9, 10, 11, 20, 101])
def test_numbers_and_first_item(count: int) -> None:
    # Item 1 has no rule above it; numbers past 9 and 99 widen the text part's indent.
    renderer = EmailRenderer()
    items = tuple(
        replace(NORMAL, key=f"arxiv:2410.{n:05d}", title=f"Paper {n}", reason=f"because {n}")
        for n in range(count)
    )
    view = digest_view(items)
    over_budget = count > 20  # 101 items: the HTML part leaves some out, in full
    assert_same(renderer, view, pieces=not over_budget)
    assert_same(renderer, replace(view, items=items[::-1]), pieces=not over_budget)


def test_hostile_values_are_escaped_in_holes() -> None:
    renderer = EmailRenderer()
    item = replace(
        HOSTILE,
        reason='matched "<script>alert(1)</script>" & {braces} {0} %s',
        more_url="https://digest.example.org/feedback/a&b<c>/up",
        less_url="https://digest.example.org/feedback/a&b<c>/down",
    )
    view = digest_view((item, NORMAL))
    assert_same(renderer, view)
    html = renderer.render(view).html
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html and "{braces} {0} %s" in html
    assert "feedback/a&amp;b/up" not in html  # an unsafe URL is dropped, as in full renders


def test_vote_link_lines_are_fresh_and_others_shared() -> None:
    renderer = EmailRenderer()
    first = renderer.render(digest_view((NORMAL,)))
    second = renderer.render(digest_view((NORMAL,)))
    assert first.html_lines is not None and second.html_lines is not None
    fresh = [c for c in first.html_lines if isinstance(c, Fresh)]
    assert fresh and all("More like this" in c for c in fresh)
    shared = [
        (a, b)
        for a, b in zip(first.html_lines, second.html_lines, strict=True)
        if not isinstance(a, Fresh) and '<p style="margin:0 0 6px">' in a
    ]
    assert shared and all(a is b for a, b in shared)  # the snippet line: one object


def test_reason_with_line_breaks_wraps_like_the_template() -> None:
    renderer = EmailRenderer()
    long_reason = " ".join(["matched “a very long interest phrase” (title)"] * 6)
    view = digest_view(tuple(replace(NORMAL, reason=long_reason) for _ in range(12)))
    assert_same(renderer, view)
    lines = renderer.render(view).text.split("\n")
    reasons = [n for n, line in enumerate(lines) if line.lstrip().startswith("Why: ")]
    assert len(reasons) == 12
    for n in reasons:  # continued under the number's width: 3 columns, then 4 from item 10
        pad = lines[n][: len(lines[n]) - len(lines[n].lstrip())]
        assert lines[n + 1].startswith(pad) and not lines[n + 1].startswith(pad + " ")
    assert {len(lines[n]) - len(lines[n].lstrip()) for n in reasons} == {3, 4}


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pieces, "PIECE_CACHE_SIZE", 5)
    renderer = EmailRenderer()
    for n in range(40):
        assert_same(renderer, digest_view((replace(NORMAL, key=f"k{n}", title=f"T{n}"),)))
    for piece_renderer in (renderer._html_pieces, renderer._text_pieces):
        assert piece_renderer is not None
        assert len(piece_renderer._pieces) <= 5


def env(**options: object) -> Environment:
    return Environment(autoescape=True, undefined=StrictUndefined, **options)  # type: ignore[arg-type]  # test options


@pytest.mark.parametrize(
    "source",
    [
        "{{ items | length }}{% for item in items %}{{ item.title }}{% endfor %}",  # frame
        "{%- for item in items %}{{ item.title }}{% endfor %}",  # whitespace control
        "{% for item in items %}{{ item.title }}{%- endfor %}",
        "{% for item in items %}{{ loop.cycle('a', 'b') }}{% endfor %}",  # loop method
        "{% for item in items %}{{ item | string }}{% endfor %}",  # item whole
        "{% for item in items %}{{ site_name }}{% endfor %}",  # the context in the body
        "{% for item in items %}a{% endfor %}{% for item in items %}b{% endfor %}",  # two
        "{% for item in items %}{{ item.title }}",  # no end
        "no loop at all",
    ],
)
def test_templates_the_analysis_cannot_prove_have_no_pieces(source: str) -> None:
    assert PieceRenderer.for_source(env(), source) is None


def test_reader_values_used_otherwise_are_keyed_not_holes() -> None:
    source = (
        "<ul>{% for item in items %}<li>{{ item.reason | upper }} {{ item.more_url }}"
        "{% if loop.last %}.{% endif %}</li>\n{% endfor %}</ul>\n"
    )
    renderer = PieceRenderer.for_source(env(), source)
    assert renderer is not None
    assert renderer.fields == {"reason", "more_url"}
    template = env().from_string(source)
    rng = random.Random(3)
    for _ in range(50):
        items = tuple(
            replace(NORMAL, reason=rng.choice(WORDS), more_url=rng.choice([None, "https://a/&"]))
            for _ in range(rng.randint(0, 4))
        )
        body = renderer.render({}, items, item_values(items, renderer.fields))
        assert body is not None
        from digest.render.display import item_context  # noqa: PLC0415 - the full render's

        expected = template.render(items=[item_context(i, n) for n, i in enumerate(items, 1)])
        assert body.text == expected


def test_a_set_name_the_context_also_has_renders_in_full() -> None:
    source = "{% for item in items %}{% set site_name = 'x' %}{{ site_name }}\n{% endfor %}"
    renderer = PieceRenderer.for_source(env(), source)
    assert renderer is not None
    items = (NORMAL,)
    assert renderer.render({"site_name": "y"}, items, item_values(items, renderer.fields)) is None
    assert renderer.render({}, items, item_values(items, renderer.fields)) is not None


def test_empty_body_encodes_like_qp_body() -> None:
    renderer = PieceRenderer.for_source(env(), "{% for item in items %}{% endfor %}")
    assert renderer is not None
    body = renderer.render({}, (), [])
    assert body is not None and body.text == ""
    assert qp_lines(body.chunks) == qp_body("")


def test_override_templates_render_the_same(tmp_path: Path) -> None:
    # An override in the old style (the reason wrapped in the template) is still exact.
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt").write_text(
        "{% for item in items %}\n"
        '{% set pad = " " * ((item.number ~ ". ") | length) %}\n'
        '{{ item.number }}. {{ item.title }}\n{{ pad }}{{ ("Why: " ~ item.reason) | wrap(30) '
        "| indent(pad) }}\n{% endfor %}\n",
        encoding="utf-8",
    )
    renderer = EmailRenderer(templates_dir=tmp_path)
    assert renderer.renders_pieces == (True, True)
    for view in random_views(60, seed=5):
        assert_same(renderer, view)
