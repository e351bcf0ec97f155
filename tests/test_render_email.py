"""The digest email renderer: golden files, templates, escaping, size budget, helpers."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import markupsafe
import pytest
from markupsafe import Markup
from render_fixtures import (
    BARE,
    EMAIL_ITEMS,
    HOSTILE,
    LINKS,
    NORMAL,
    check_golden,
    digest_view,
    long_item,
)

from digest.errors import RenderError
from digest.render import email
from digest.render.display import authors_line, safe_url, shorten, single_line, subject_line, wrap
from digest.render.email import EmailRenderer, check_templates


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer()


class _Links(HTMLParser):
    """Collects (href, text) of every <a> in a document."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def links_of(html: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(html)
    return parser.links


def test_golden_html_and_text(renderer: EmailRenderer) -> None:
    rendered = renderer.render(digest_view(EMAIL_ITEMS))
    check_golden("digest.html", rendered.html.encode())
    check_golden("digest.txt", rendered.text.encode())
    assert rendered.subject == (
        "Paper digest: 5 new papers — Breaking the Memory Barrier: Near Infinite Batch "
        "Size Scaling for…"
    )


def test_every_template_compiles() -> None:
    names = check_templates()
    assert {"email/digest.mjml", "email/digest.txt"} <= set(names)


def test_compiled_html_keeps_jinja_and_media_queries(renderer: EmailRenderer) -> None:
    html = renderer.render(digest_view()).html
    # MRML passed every Jinja tag through, and Jinja consumed them all.
    assert "{{" not in html
    assert "{%" not in html
    assert "@media only screen and (max-width: 480px)" in html
    assert "fonts.googleapis.com" not in html  # no web font fetched from a third party


def test_footer_links_in_text_and_html(renderer: EmailRenderer) -> None:
    rendered = renderer.render(digest_view())
    for url in (LINKS.manage_url, LINKS.unsubscribe_url, LINKS.atom_url, LINKS.rss_url):
        assert url in rendered.text
    links = dict(links_of(rendered.html))
    assert links[LINKS.manage_url] == "Manage preferences"
    assert links[LINKS.unsubscribe_url] == "Unsubscribe"
    assert links[LINKS.atom_url] == "Atom"
    assert links[LINKS.rss_url] == "RSS"
    assert links[LINKS.json_url] == "JSON Feed"
    assert "Manage preferences:\n" + LINKS.manage_url + "\n" in rendered.text
    assert "Unsubscribe:\n" + LINKS.unsubscribe_url + "\n" in rendered.text


def test_items_show_title_authors_reason_and_links(renderer: EmailRenderer) -> None:
    rendered = renderer.render(digest_view())
    links = links_of(rendered.html)
    assert (NORMAL.url, NORMAL.title) in links
    assert (NORMAL.code_url, "Code") in links
    assert (NORMAL.pdf_url, "PDF") in links
    assert "Zesen Cheng, Hang Zhang, Kehan Li et al. · published 22 Oct 2024" in rendered.html
    assert "89 upvotes" in rendered.html
    assert "Why: matched &#34;contrastive learning&#34; (title, abstract)" in rendered.html
    assert "1. " + NORMAL.title in " ".join(rendered.text.split())  # wrapped at 72 columns
    assert "3. " + BARE.title in rendered.text


def test_hostile_item_is_escaped_and_single_line(renderer: EmailRenderer) -> None:
    rendered = renderer.render(digest_view())
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in rendered.html
    assert "<b>bold</b>" not in rendered.html
    hrefs = [href for href, _ in links_of(rendered.html)]
    assert not any(href.lower().startswith("javascript:") for href in hrefs)
    assert "https://example.org/paper?id=1&amp;v=2" in rendered.html
    # In the text part the CR/LF is gone: no forged "Bcc:" or "Injected:" line.
    lines = rendered.text.splitlines()
    assert not any(line.startswith(("Bcc:", "Injected:", " all &")) for line in lines)
    assert any(line.startswith("2. Attention <script>") and "Bcc:" in line for line in lines)
    assert "javascript:" not in rendered.text
    assert "Zoë Ångström, Jürgen Müller, 李雷 · published 20 Nov 2026" in rendered.text


@pytest.mark.parametrize(
    "title",
    [
        "Line one\r\nSubject: forged",
        "Line one\nBcc: a@b.c",
        "Unicode\u2028separator\u2029and\x85NEL",
        "Nul\x00and\x1bescape\x7f",
        "   ",
    ],
)
def test_subject_is_always_one_line(renderer: EmailRenderer, title: str) -> None:
    view = digest_view((replace(NORMAL, title=title),))
    subject = renderer.render(view).subject
    assert len(subject.splitlines()) == 1
    assert "\r" not in subject
    assert "\n" not in subject
    assert subject.startswith("Paper digest: 1 new paper — ")


def test_subject_truncates_long_titles_at_a_word() -> None:
    item = replace(NORMAL, title="Word " * 40)
    subject = subject_line("Paper digest", (item, item), "week of 1 Jan")
    assert subject.startswith("Paper digest: 2 new papers — Word Word")
    assert subject.endswith("Word…")
    assert len(subject) < 110


def test_empty_digest_renders_a_short_note(renderer: EmailRenderer) -> None:
    rendered = renderer.render(digest_view(()))
    assert rendered.subject == "Paper digest: nothing new — week of 23 Nov 2026"
    assert "Nothing new matched your interests (week of 23 Nov 2026)." in rendered.html
    assert "Nothing new matched your interests (week of 23 Nov 2026)." in rendered.text
    assert LINKS.unsubscribe_url in rendered.text
    assert (LINKS.unsubscribe_url, "Unsubscribe") in links_of(rendered.html)


def test_27_long_items_stay_under_gmail_clipping(renderer: EmailRenderer) -> None:
    view = digest_view(tuple(long_item(n) for n in range(27)))
    html = renderer.render(view).html
    assert html.count('class="pd-item"') == 27
    assert len(html.encode()) < 100_000


def test_site_name_is_configurable() -> None:
    rendered = EmailRenderer(site_name="Lab\r\nnews").render(digest_view())
    assert rendered.subject.startswith("Lab news: 3 new papers")


def test_override_directory_wins(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt").write_text(
        "{{ items | length }} papers; stop: {{ links.unsubscribe_url }}\n"
    )
    rendered = EmailRenderer(templates_dir=tmp_path).render(digest_view())
    assert rendered.text == f"3 papers; stop: {LINKS.unsubscribe_url}\n"
    assert "Manage preferences" in rendered.html  # the shipped MJML still applies
    assert "email/digest.txt" in check_templates(tmp_path)


def test_wrap_indent_is_wrap_then_indent(renderer: EmailRenderer, tmp_path: Path) -> None:
    """The shipped text template's ``wrap_indent`` filter is the ``wrap | indent`` pair it
    replaced, which override templates may still use: both give the same text part."""
    shipped = (Path(__file__).parents[1] / "templates" / "email" / "digest.txt").read_text()
    assert "wrap_indent(width, pad)" in shipped
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt").write_text(
        shipped.replace("wrap_indent(width, pad)", "wrap(width) | indent(pad)")
    )
    assert "wrap_indent" not in (tmp_path / "email" / "digest.txt").read_text()
    pair = EmailRenderer(templates_dir=tmp_path)
    items = (*EMAIL_ITEMS, HOSTILE, BARE, *(long_item(n) for n in range(12)))
    for view in (digest_view(), digest_view(items), digest_view(())):
        fused, unfused = renderer.render(view), pair.render(view)
        assert fused.text == unfused.text and fused.html == unfused.html
        assert fused.html_utf8 == fused.html.encode("utf-8")  # the size check's encoding


def test_printed_values_are_escaped_as_markupsafe_escapes_them() -> None:
    """The HTML template prints values through a plain-str escape (no Markup per value):
    the same bytes as Jinja's own ``markupsafe.escape``, hostile values included."""
    fast = EmailRenderer()
    namespace = fast._html.root_render_func.__globals__
    assert namespace["escape"] is email._escape_output
    items = (*EMAIL_ITEMS, HOSTILE, BARE, *(long_item(n) for n in range(30)))
    views = [digest_view(), digest_view(items), digest_view(())]
    views.append(replace(views[1], subscriber_email='a&b<\'"x">@example.org'))
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(namespace, "escape", markupsafe.escape)
        expected = [fast.render(view) for view in views]
    for view, before in zip(views, expected, strict=True):
        after = fast.render(view)
        assert after.html == before.html and after.text == before.text
    assert "Attention &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in expected[1].html
    assert "/feedback/a&amp;b=c/up" in expected[1].html
    # what is not a plain str is still markupsafe's business
    assert email._escape_output(Markup("<b>")) == "<b>"
    assert email._escape_output(3) == "3"
    assert email._escape_output("<a href='x'>&") == str(markupsafe.escape("<a href='x'>&"))


def test_broken_override_templates_raise_render_error(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt").write_text("{% for x in %}\n")
    with pytest.raises(RenderError, match=r"email/digest\.txt"):
        EmailRenderer(templates_dir=tmp_path)
    with pytest.raises(RenderError, match=r"email/digest\.txt"):
        check_templates(tmp_path)
    (tmp_path / "email" / "digest.txt").write_text("ok\n")
    (tmp_path / "email" / "digest.mjml").write_text("<mjml><mj-body><mj-section>")
    with pytest.raises(RenderError, match="not valid MJML"):
        EmailRenderer(templates_dir=tmp_path)


def test_undefined_variable_in_override_is_a_render_error(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "digest.txt").write_text("{{ no_such_thing }}\n")
    renderer = EmailRenderer(templates_dir=tmp_path)
    with pytest.raises(RenderError, match="42:weekly:2026-W48"):
        renderer.render(digest_view())


def test_single_line_and_shorten() -> None:
    assert single_line(" a\r\n b\tc\u2028d\x00e ") == "a b c d e"
    assert shorten("short text", 300) == "short text"
    cut = shorten("alpha beta gamma delta", 12)
    assert cut == "alpha beta…"
    assert shorten("x" * 50, 10) == "x" * 10 + "…"  # one long word is cut, not dropped
    spaced = "word" + " " * 2000 + "tail"
    assert shorten(spaced, 300) == "word tail"  # whitespace-heavy head is re-read whole


def test_authors_line() -> None:
    assert authors_line(()) == ""
    assert authors_line(("A", "B", "C", "D")) == "A, B, C, D"
    assert authors_line(("A", "B", "C", "D", "E")) == "A, B, C et al."
    assert authors_line(("A\nB", " ", "C")) == "A B, C"


def test_safe_url() -> None:
    assert safe_url("https://arxiv.org/abs/1") == "https://arxiv.org/abs/1"
    assert safe_url(" http://x.org/a?b=1&c=2 ") == "http://x.org/a?b=1&c=2"
    for bad in (
        "javascript:alert(1)",
        "data:text/html,x",
        "//x.org",
        "https://x.org/a b",
        'https://x.org/"onmouseover',
        "https://x.org/\r\nX",
        None,
        "",
    ):
        assert safe_url(bad) is None


def test_wrap() -> None:
    text = " ".join(["word"] * 40)
    lines = wrap(text, 20).splitlines()
    assert all(len(line) <= 20 for line in lines)
    assert " ".join(lines) == text
    assert wrap("x" * 30, 10) == "x" * 30
    assert wrap(HOSTILE.abstract, 72).count("\n") == 0
