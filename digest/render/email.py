"""The digest email: subject, HTML part (MJML → Jinja) and plain-text part.

:class:`EmailRenderer` is built once per run. It compiles ``email/digest.mjml`` with
mjml-python (MRML, the only place ``mjml`` is imported) into HTML, and that HTML becomes an
autoescaped Jinja template; each subscriber's email is then a plain Jinja render. Templates
are looked up in the configured override directory first, then in the shipped ``templates/``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mjml
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
)
from jinja2.filters import do_indent

from digest.config.resources import templates_dir as shipped_templates_dir
from digest.errors import RenderError
from digest.render.display import (
    PAPER_CACHE_SIZE,
    display_title,
    interest_label,
    item_context,
    shorten,
    single_line,
    subject_line,
    wrap,
)
from digest.render.pieces import Body, ItemValues, PieceRenderer, item_values
from digest.render.views import DigestView, ItemView
from digest.subscribers.links import links_for

HTML_TEMPLATE = "email/digest.mjml"
TEXT_TEMPLATE = "email/digest.txt"
PREHEADER_CHARS = 140
HTML_BUDGET = 100_000  # bytes of HTML; Gmail clips a message's HTML beyond about 102 KB

# The text part wraps and indents each paper's snippet: the same words in every digest that
# shows the paper, so both filters remember their results (the values are plain strings).
_cached_wrap = functools.lru_cache(maxsize=PAPER_CACHE_SIZE)(wrap)
_cached_indent = functools.lru_cache(maxsize=PAPER_CACHE_SIZE)(do_indent)


def _indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    """Jinja's ``indent`` filter, remembered for plain strings (Markup keeps its type)."""
    if type(s) is str:
        return _cached_indent(s, width, first, blank)
    return do_indent(s, width, first, blank)


def clear_filter_caches() -> None:
    """Forget the remembered filter results (benchmarks and tests start cold with it)."""
    _cached_wrap.cache_clear()
    _cached_indent.cache_clear()


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """A rendered digest: a one-line subject and the two bodies.

    ``html_lines`` / ``text_lines``, when set, are the bodies' lines
    (:class:`~digest.render.pieces.Body`): the same strings in every digest where they are the
    same, so the transport encodes each once.
    """

    subject: str
    html: str
    text: str
    html_lines: tuple[str, ...] | None = field(default=None, compare=False, repr=False)
    text_lines: tuple[str, ...] | None = field(default=None, compare=False, repr=False)


def template_loader(templates_dir: Path | None = None) -> BaseLoader:
    """Override directory first (when given), shipped templates second."""
    loaders = [FileSystemLoader(str(templates_dir))] if templates_dir else []
    loaders.append(FileSystemLoader(str(shipped_templates_dir())))
    return ChoiceLoader(loaders)


def _html_env(loader: BaseLoader) -> Environment:
    # The compiled MJML is loaded with from_string, so autoescape is forced on, not guessed
    # from a file extension.
    return Environment(loader=loader, autoescape=True, undefined=StrictUndefined)


def _text_env(loader: BaseLoader) -> Environment:
    # Plain text is not HTML: escaping would show "&amp;" to readers. Safety comes from the
    # context instead (every value is one sanitized line, see digest.render.display).
    env = Environment(
        loader=loader,
        autoescape=False,  # noqa: S701 - the text/plain part; values are sanitized lines
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = _cached_wrap
    env.filters["indent"] = _indent
    return env


def compile_mjml(env: Environment, name: str) -> Template:
    """Load the MJML template ``name``, compile it to HTML once and parse that as Jinja."""
    html = mjml_html(env, name)
    try:
        return env.from_string(html)
    except TemplateError as exc:
        raise RenderError(f"{name} compiled to HTML that is not a valid template: {exc}") from exc


def mjml_html(env: Environment, name: str) -> str:
    """The HTML (a Jinja source) that the MJML template ``name`` compiles to."""
    try:
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]  # ChoiceLoader always has a loader
    except TemplateError as exc:
        raise RenderError(f"email template {name} not found: {exc}") from exc
    try:
        html: str = mjml.mjml2html(source, disable_comments=True)
    except ValueError as exc:  # MRML reports every parse error as ValueError
        raise RenderError(f"{name} is not valid MJML: {exc}") from exc
    return html


def _load(env: Environment, name: str) -> Template:
    try:
        return env.get_template(name)
    except TemplateError as exc:
        raise RenderError(f"email template {name} does not compile: {exc}") from exc


def check_templates(templates_dir: Path | None = None) -> list[str]:
    """Compile every email template (overrides included); return the names checked.

    Raises :class:`RenderError` naming the first template that fails.
    """
    loader = template_loader(templates_dir)
    html_env, text_env = _html_env(loader), _text_env(loader)
    names = sorted(n for n in loader.list_templates() if n.startswith("email/"))
    for name in names:
        if name.endswith(".mjml"):
            compile_mjml(html_env, name)
        elif name.endswith((".html", ".htm")):
            _load(html_env, name)
        else:
            _load(text_env, name)
    return names


class EmailRenderer:
    """Renders digests to emails. Build once per run: the MJML compile happens here.

    Both templates are also prepared for rendering from remembered per-paper pieces
    (:mod:`digest.render.pieces`); a template that cannot be, or whose pieces do not render
    the probe digests exactly as the full template does, is always rendered in full.
    """

    def __init__(self, *, templates_dir: Path | None = None, site_name: str = "Paper digest"):
        self.site_name = single_line(site_name) or "Paper digest"
        loader = template_loader(templates_dir)
        html_env, text_env = _html_env(loader), _text_env(loader)
        html_source = mjml_html(html_env, HTML_TEMPLATE)
        try:
            self._html = html_env.from_string(html_source)
        except TemplateError as exc:
            raise RenderError(
                f"{HTML_TEMPLATE} compiled to HTML that is not a valid template: {exc}"
            ) from exc
        self._text = _load(text_env, TEXT_TEMPLATE)
        text_source = text_env.loader.get_source(text_env, TEXT_TEMPLATE)[0]  # type: ignore[union-attr]  # ChoiceLoader always has a loader
        self._html_pieces = PieceRenderer.for_source(html_env, html_source)
        self._text_pieces = PieceRenderer.for_source(text_env, text_source)
        self._check_pieces()

    @property
    def renders_pieces(self) -> tuple[bool, bool]:
        """Whether the HTML and the text part are rendered from pieces."""
        return self._html_pieces is not None, self._text_pieces is not None

    def context(self, view: DigestView) -> dict[str, Any]:
        """The template context for ``view`` (public so previews and tests can inspect it)."""
        context = self._frame_context(view)
        context["items"] = [item_context(item, n) for n, item in enumerate(view.items, start=1)]
        return context

    def _frame_context(self, view: DigestView) -> dict[str, Any]:
        """The context without ``items``: what the templates show around them."""
        count = len(view.items)
        if count:
            headline = f"{count} new paper{'' if count == 1 else 's'}"
            titles = (display_title(item.title) for item in view.items[:3])
            preheader = shorten("; ".join(titles), PREHEADER_CHARS)
        else:
            headline = "Nothing new"
            preheader = "Nothing new matched your interests."
        return {
            "subject": subject_line(self.site_name, view.items, view.period_label),
            "preheader": preheader,
            "headline": headline,
            "site_name": self.site_name,
            "period_label": single_line(view.period_label),
            "is_empty": view.is_empty,
            "left_out": 0,  # items left out of this email to keep it under HTML_BUDGET
            "links": view.links,
            "recipient": single_line(view.subscriber_email),
            "interests": [s for s in (interest_label(i) for i in view.interests) if s],
        }

    def render(self, view: DigestView) -> RenderedEmail:
        """Render one subscriber's digest (a pure function of ``view``).

        Gmail clips HTML over about 102 KB, and the unsubscribe link is at the end: when the
        items do not fit in :data:`HTML_BUDGET` (only listings at the field limits come near
        it), the last ones are left out of this email and it says how many (``left_out``);
        the subject still counts them all, and every one of them is in the feeds.
        """
        try:
            return self._render_pieces(view) or self._render_full(view)
        except TemplateError as exc:
            raise RenderError(f"rendering digest {view.key} failed: {exc}") from exc

    def _render_full(self, view: DigestView) -> RenderedEmail:
        context = self.context(view)
        items = context["items"]
        html = self._html.render(context)
        while len(html.encode("utf-8")) > HTML_BUDGET and len(context["items"]) > 1:
            context["items"] = context["items"][:-1]
            context["left_out"] = len(items) - len(context["items"])
            html = self._html.render(context)
        text = self._text.render(context)
        return RenderedEmail(subject=context["subject"], html=html, text=text)

    def _render_pieces(self, view: DigestView) -> RenderedEmail | None:
        """The email from pieces, or None to render it in full (an HTML part over budget,
        an item the pieces cannot show)."""
        if self._html_pieces is None:
            return None
        frame = self._frame_context(view)
        values = item_values(view.items, self._fields)
        html = self._html_pieces.render(frame, view.items, values)
        if html is None or len(html.text.encode("utf-8")) > HTML_BUDGET:
            return None
        text = self._text_body(frame, view.items, values)
        if text is None:
            return RenderedEmail(
                subject=frame["subject"],
                html=html.text,
                text=self._text.render(self.context(view)),
                html_lines=html.chunks,
            )
        return RenderedEmail(
            subject=frame["subject"],
            html=html.text,
            text=text.text,
            html_lines=html.chunks,
            text_lines=text.chunks,
        )

    def _text_body(
        self, frame: dict[str, Any], items: tuple[ItemView, ...], values: list[ItemValues]
    ) -> Body | None:
        if self._text_pieces is None:
            return None
        return self._text_pieces.render(frame, items, values)

    @property
    def _fields(self) -> frozenset[str]:
        """The reader values the piece renderers read."""
        return frozenset().union(
            *(p.fields for p in (self._html_pieces, self._text_pieces) if p is not None)
        )

    def _check_pieces(self) -> None:
        """Give up pieces for a template whose pieces do not render the probes exactly."""
        for view in probe_views():
            try:
                full = self._render_full(view)
            except TemplateError:  # a broken override: it fails where digests are rendered
                self._html_pieces = self._text_pieces = None
                return
            frame = self._frame_context(view)
            values = item_values(view.items, self._fields)
            if self._html_pieces is not None:
                html = self._html_pieces.render(frame, view.items, values)
                if html is None or not _same(html, full.html):
                    self._html_pieces = None
            text = self._text_body(frame, view.items, values)
            if text is None or not _same(text, full.text):
                self._text_pieces = None


def _same(body: Body, text: str) -> bool:
    return body.text == text and "\n".join(body.chunks) == text.removesuffix("\n")


def probe_views() -> list[DigestView]:
    """Digests that exercise every branch of the shipped templates (pieces are checked
    against full renders of them): hostile text, missing fields, numbers past 9, no items."""
    links = links_for("https://digest.example.org/base?a=1&b=2", "tok<en>")
    moment = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    items = [
        ItemView(
            key=f"arxiv:2411.{n:05d}",
            title=('<b>Bold</b> & "quoted" title ' * (n % 3 + 1)) + str(n),
            url=None if n % 4 == 3 else f"https://arxiv.org/abs/2411.{n:05d}?x=1&y=<2>",
            abstract=("Abstract & <words> " * (n * 7)) if n % 5 != 4 else "",
            authors=() if n % 6 == 5 else tuple(f"Author {i} & Co" for i in range(n % 7)),
            published=moment if n % 2 else None,
            listed=None if n % 3 == 2 else moment,
            upvotes=n % 4,
            code_url=f"https://github.com/o/r{n}" if n % 3 == 0 else None,
            pdf_url=f"https://arxiv.org/pdf/2411.{n:05d}" if n % 2 == 0 else None,
            reason="" if n % 5 == 1 else f"matched “x & y” <{n}> " * (n % 4 + 1),
            matched=("x & y",),
            more_url=None if n % 7 == 6 else f"https://digest.example.org/feedback/t{n}&q/up",
            less_url=None if n % 7 == 6 else f"https://digest.example.org/feedback/t{n}&q/down",
        )
        for n in range(12)
    ]
    return [
        DigestView(
            key=f"1:weekly:probe-{count}",
            subscriber_email="reader&co@example.org",
            subscriber_name="A <Reader>",
            period_label="week of 23 Nov 2026",
            generated_at=moment,
            items=tuple(items[:count]),
            links=links,
            interests=("x & y", "<z>^2"),
        )
        for count in (0, 1, 12)
    ]


@functools.lru_cache(maxsize=8)
def cached_renderer(templates_dir: Path | None, site_name: str) -> EmailRenderer:
    """One compiled renderer per (templates, site name) for the life of the process.

    Compiling the MJML takes tens of milliseconds; a scheduler delivering every few minutes
    should not pay it each time. Template edits take effect on restart.
    """
    return EmailRenderer(templates_dir=templates_dir, site_name=site_name)
