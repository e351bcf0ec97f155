"""The digest email: subject, HTML part (MJML → Jinja) and plain-text part.

:class:`EmailRenderer` is built once per run. It compiles ``email/digest.mjml`` with
mjml-python (MRML, the only place ``mjml`` is imported) into HTML, and that HTML becomes an
autoescaped Jinja template; each subscriber's email is then a plain Jinja render. Templates
are looked up in the configured override directory first, then in the shipped ``templates/``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import markupsafe
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
    interest_label,
    item_context,
    shorten,
    single_line,
    subject_line,
    wrap,
)
from digest.render.views import DigestView

HTML_TEMPLATE = "email/digest.mjml"
TEXT_TEMPLATE = "email/digest.txt"
PREHEADER_CHARS = 140
HTML_BUDGET = 100_000  # bytes of HTML; Gmail clips a message's HTML beyond about 102 KB

# The text part wraps and indents each paper's snippet: the same words in every digest that
# shows the paper, so both filters remember their results (the values are plain strings).
_cached_wrap = functools.lru_cache(maxsize=PAPER_CACHE_SIZE)(wrap)
_cached_indent = functools.lru_cache(maxsize=PAPER_CACHE_SIZE)(do_indent)


@functools.lru_cache(maxsize=PAPER_CACHE_SIZE)
def _wrap_indent(s: str, width: int, pad: str) -> str:
    """``s | wrap(width) | indent(pad)`` in one remembered call (the shipped text template
    does this four times an item; the text part's values are plain strings)."""
    return do_indent(wrap(s, width), pad)


def _indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    """Jinja's ``indent`` filter, remembered for plain strings (Markup keeps its type)."""
    if type(s) is str:
        return _cached_indent(s, width, first, blank)
    return do_indent(s, width, first, blank)


def clear_filter_caches() -> None:
    """Forget the remembered filter results (benchmarks and tests start cold with it)."""
    _cached_wrap.cache_clear()
    _cached_indent.cache_clear()
    _wrap_indent.cache_clear()


# markupsafe's C escaping of a str (private): what markupsafe.escape returns, as a plain str.
_ESCAPE_STR: Callable[[str], str] | None = getattr(markupsafe, "_escape_inner", None)


def _escape_output(value: object) -> str:
    """``markupsafe.escape(value)`` as text: the same characters, but a str rather than a
    Markup for a str (the Markup's Python-level ``__new__`` was half the cost)."""
    if type(value) is str and _ESCAPE_STR is not None:
        return _ESCAPE_STR(value)
    return markupsafe.escape(value)


def _plain_escapes(template: Template) -> Template:
    """``template`` with its printed values escaped by :func:`_escape_output`.

    Jinja's generated code calls the name ``escape`` of its own module only where it prints
    a value (``yield escape(value)``, autoescaped output); what it yields is joined as text,
    so whether each escaped value is a Markup or a str changes no byte of the HTML (filters,
    ``~`` and macros use markupsafe themselves). Anything but a str is escaped by markupsafe
    as before. A Jinja whose generated code differs keeps its own escape."""
    namespace = getattr(template.root_render_func, "__globals__", None)
    if (
        _ESCAPE_STR is not None
        and isinstance(namespace, dict)
        and namespace.get("escape") is markupsafe.escape
    ):
        namespace["escape"] = _escape_output
    return template


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """A rendered digest: a one-line subject and the two bodies."""

    subject: str
    html: str
    text: str
    # The HTML as UTF-8 when the renderer already encoded it (its size check): the message
    # writer encodes it only when empty.
    html_utf8: bytes = field(default=b"", compare=False, repr=False)


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
    env.filters["wrap_indent"] = _wrap_indent
    return env


def compile_mjml(env: Environment, name: str) -> Template:
    """Load the MJML template ``name``, compile it to HTML once and parse that as Jinja."""
    try:
        source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]  # ChoiceLoader always has a loader
    except TemplateError as exc:
        raise RenderError(f"email template {name} not found: {exc}") from exc
    try:
        html = mjml.mjml2html(source, disable_comments=True)
    except ValueError as exc:  # MRML reports every parse error as ValueError
        raise RenderError(f"{name} is not valid MJML: {exc}") from exc
    try:
        return _plain_escapes(env.from_string(html))
    except TemplateError as exc:
        raise RenderError(f"{name} compiled to HTML that is not a valid template: {exc}") from exc


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
    """Renders digests to emails. Build once per run: the MJML compile happens here."""

    def __init__(self, *, templates_dir: Path | None = None, site_name: str = "Paper digest"):
        self.site_name = single_line(site_name) or "Paper digest"
        loader = template_loader(templates_dir)
        self._html = compile_mjml(_html_env(loader), HTML_TEMPLATE)
        self._text = _load(_text_env(loader), TEXT_TEMPLATE)

    def context(self, view: DigestView) -> dict[str, Any]:
        """The template context for ``view`` (public so previews and tests can inspect it)."""
        items = [item_context(item, n) for n, item in enumerate(view.items, start=1)]
        period = single_line(view.period_label)
        count = len(items)
        if items:
            headline = f"{count} new paper{'' if count == 1 else 's'}"
            preheader = shorten("; ".join(i.title for i in items[:3]), PREHEADER_CHARS)
        else:
            headline = "Nothing new"
            preheader = "Nothing new matched your interests."
        return {
            "subject": subject_line(self.site_name, view.items, view.period_label),
            "preheader": preheader,
            "headline": headline,
            "site_name": self.site_name,
            "period_label": period,
            "is_empty": view.is_empty,
            "items": items,
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
        context = self.context(view)
        items = context["items"]
        try:
            html = self._html.render(context)
            encoded = html.encode("utf-8")
            while len(encoded) > HTML_BUDGET and len(context["items"]) > 1:
                context["items"] = context["items"][:-1]
                context["left_out"] = len(items) - len(context["items"])
                html = self._html.render(context)
                encoded = html.encode("utf-8")
            text = self._text.render(context)
        except TemplateError as exc:
            raise RenderError(f"rendering digest {view.key} failed: {exc}") from exc
        return RenderedEmail(subject=context["subject"], html=html, text=text, html_utf8=encoded)


@functools.lru_cache(maxsize=8)
def cached_renderer(templates_dir: Path | None, site_name: str) -> EmailRenderer:
    """One compiled renderer per (templates, site name) for the life of the process.

    Compiling the MJML takes tens of milliseconds; a scheduler delivering every few minutes
    should not pay it each time. Template edits take effect on restart.
    """
    return EmailRenderer(templates_dir=templates_dir, site_name=site_name)
