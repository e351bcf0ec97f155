"""A digest's email bodies from remembered per-paper pieces, and their lines.

Most of a digest's bytes are its items, and most of an item is the same in every digest that
shows the paper (title, links, authors, date, snippet, upvotes); only a few values are the
reader's (the item's number, the reason, the two vote links). Rendering every item through
Jinja, then quoted-printable-encoding the whole body, paid for the paper's part again in every
digest. A :class:`PieceRenderer` renders the paper's part once per process:

1. The template's one ``{% for item in items %}`` loop is cut out of its source: the rest is
   the *frame*, rendered per digest with one marker where the items go; the loop body is a
   template of its own.
2. The body's syntax tree says how it uses each reader value: one only printed as it is
   (``{{ item.reason }}``) or tested for truth (``{% if item.reason %}``) is a *hole*: the
   body is rendered with a sentinel in its place, and the reader's value, escaped as Jinja
   escapes it, is put in per digest. A reader value used in any other way
   (``item.number ~ ". "``, a filter) is part of the piece's key, with the paper's display
   fields, the truth of each hole and the ``loop`` attributes the body reads.
3. A piece is kept as lines. The body is returned with its lines (:class:`Body`): lines with
   no hole are the same string objects in every digest, so the transport's encoder
   (:func:`digest.delivery.qp.qp_lines`) finds their encoding by a hash it does not compute
   again.

Anything the analysis cannot prove (another loop shape, ``loop.cycle``, ``item`` passed whole,
the frame reading ``items``, whitespace control on the loop's tags, a sentinel that does not
come back intact) means no piece renderer for that template, or a full render for that
digest: the result is always what the full template renders. The shipped templates are
checked against full renders of probe digests when the renderer is built.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, Template, TemplateError, nodes
from jinja2.meta import find_undeclared_variables
from markupsafe import Markup, escape

from digest.render.display import (
    ItemContext,
    date_label,
    item_context,
    number_pad,
    safe_url,
    single_line,
    text_reason,
)
from digest.render.views import ItemView

PIECE_CACHE_SIZE = 8192  # pieces per template (a few KB each): every paper of a run, twice
# The reader's values of an item (see display.ItemContext); every other field is the paper's.
READER_FIELDS = (
    "number",
    "reason",
    "matched",
    "more_url",
    "less_url",
    "text_pad",
    "text_reason",
)
# Reader values no other digest shares (signed per reader): a line with one is Fresh.
_OWN_FIELDS = frozenset({"more_url", "less_url"})
_LOOP_ATTRS = frozenset({"index", "index0", "revindex", "revindex0", "first", "last", "length"})
_FOR = re.compile(r"\{%(-?)\s*for\s+item\s+in\s+items\s*(-?)%\}")
_BLOCK = re.compile(r"\{%(-?)\s*(for|endfor)\b[^%]*?(-?)%\}")
_ITEMS_VAR = "paper_digest_items"


class _UnsupportedError(Exception):
    """The template (or this item) cannot be rendered from pieces: render it in full."""


@dataclass(frozen=True, slots=True)
class Body:
    """A rendered body and its *chunks*: whole lines joined by ``"\\n"``, in order
    (``"\\n".join(chunks)`` is the text without its final line break, if it has one).
    Chunks that are the same in many digests are the same string objects; a chunk made for
    this digest alone (a line with the reader's values) is a :class:`Fresh` string."""

    text: str
    chunks: tuple[str, ...]


class Fresh(str):
    """A chunk with the reader's values in it: not worth remembering."""

    __slots__ = ()


class _Fill:
    """A line with holes: ``texts[0] + value(fields[0]) + texts[1] + …``. ``fresh``: a hole
    is a value no other digest shares (the filled line is then a :class:`Fresh` chunk)."""

    __slots__ = ("fields", "fresh", "texts")

    def __init__(self, parts: list[str | _Hole]) -> None:
        texts, fields = [""], []
        for part in parts:
            if isinstance(part, _Hole):
                fields.append(part.field)
                texts.append("")
            else:
                texts[-1] += part
        self.texts = tuple(texts)
        self.fields = tuple(fields)
        self.fresh = not _OWN_FIELDS.isdisjoint(fields)

    def fill(self, values: Mapping[str, str], before: str = "") -> str:
        """The line with ``values`` in its holes, after ``before`` (a partial line)."""
        texts = self.texts
        out = [before, texts[0]]
        for field, text in zip(self.fields, texts[1:], strict=True):
            out += (values[field], text)
        line = "".join(out)
        return Fresh(line) if self.fresh else line


@dataclass(frozen=True, slots=True)
class _Hole:
    field: str


_Line = str | _Fill  # a line's text, or its format with holes


@dataclass(frozen=True, slots=True)
class _Piece:
    """One rendered loop body, as lines: ``first`` and ``last`` are partial (they join the
    text before and after), ``middle`` are whole lines, consecutive plain ones in one chunk.
    ``first is None``: the body has no line break (``last`` is all of it)."""

    first: _Line | None
    middle: tuple[_Line, ...]
    last: _Line


@dataclass(frozen=True, slots=True)
class _Loop:
    """The ``loop`` attributes a body may read (Jinja's LoopContext, for one position)."""

    index0: int
    length: int

    @property
    def index(self) -> int:
        return self.index0 + 1

    @property
    def revindex(self) -> int:
        return self.length - self.index0

    @property
    def revindex0(self) -> int:
        return self.length - self.index0 - 1

    @property
    def first(self) -> bool:
        return self.index0 == 0

    @property
    def last(self) -> bool:
        return self.index0 == self.length - 1


def _split_loop(env: Environment, source: str) -> tuple[str, str] | None:
    """(frame source, body source) of the template's one top-level items loop, or None."""
    found = list(_FOR.finditer(source))
    if len(found) != 1 or "-" in found[0].groups():
        return None
    start = found[0]
    depth = 1
    for tag in _BLOCK.finditer(source, start.end()):
        depth += 1 if tag.group(2) == "for" else -1
        if depth == 0:
            end = tag
            break
    else:
        return None
    if end.group(1) or end.group(3):
        return None
    head, tail = source[: start.start()], source[end.end() :]
    body = source[start.end() : end.start()]
    if env.trim_blocks:  # the newline after a block tag is dropped
        body = body.removeprefix("\n")
        tail = tail.removeprefix("\n")
    if env.lstrip_blocks:  # so is the white space before a block tag at the start of a line
        head = _strip_line_tail(head)
        body = _strip_line_tail(body)
    return head + "{{ " + _ITEMS_VAR + " }}" + tail, body


def _strip_line_tail(text: str) -> str:
    stripped = text.rstrip(" \t")
    return stripped if stripped == "" or stripped.endswith("\n") else text


@dataclass(frozen=True, slots=True)
class _Uses:
    holes: tuple[str, ...]  # reader fields printed or tested only
    printed: tuple[str, ...]  # the holes printed at least once
    keyed: tuple[str, ...]  # reader fields used otherwise: their values are in the key
    loop: tuple[str, ...]  # loop attributes read


def _uses(body: nodes.Template) -> _Uses:
    """How the loop body uses ``item`` and ``loop`` (raises :class:`_UnsupportedError`)."""
    modes: dict[str, set[str]] = {}
    loop: set[str] = set()

    def visit(node: nodes.Node, mode: str) -> None:
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            name = node.node.name
            if name == "item":
                modes.setdefault(node.attr, set()).add(mode)
                return
            if name == "loop":
                if node.attr not in _LOOP_ATTRS:
                    raise _UnsupportedError(f"loop.{node.attr}")
                loop.add(node.attr)
                return
        if isinstance(node, nodes.Name) and node.name in ("item", "loop", _ITEMS_VAR):
            raise _UnsupportedError(f"{node.name} used whole")
        for field, value in node.iter_fields():
            for child in value if isinstance(value, list) else [value]:
                if not isinstance(child, nodes.Node):
                    continue
                if isinstance(node, nodes.Output):
                    child_mode = "printed"
                elif (isinstance(node, nodes.If) and field == "test") or (
                    isinstance(node, nodes.And | nodes.Or | nodes.Not) and mode == "tested"
                ):
                    child_mode = "tested"  # only its truth matters
                else:
                    child_mode = "used"
                visit(child, child_mode)

    visit(body, "used")
    reader = [f for f in READER_FIELDS if f in modes]
    holes = tuple(f for f in reader if "used" not in modes[f])
    return _Uses(
        holes=holes,
        printed=tuple(f for f in holes if "printed" in modes[f]),
        keyed=tuple(f for f in reader if "used" in modes[f]),
        loop=tuple(sorted(loop)),
    )


def _paper_key(item: ItemView) -> tuple[Any, ...]:
    """What an item's paper fields are made of (equal keys: equal display fields)."""
    moment = item.published or item.listed
    return (
        item.key,
        item.title,
        item.url,
        item.abstract,
        item.authors,
        date_label(moment),
        item.published is not None or item.listed is None,
        item.upvotes,
        item.code_url,
        item.pdf_url,
    )


class ItemValues:
    """What a piece renderer needs of one item: its paper's key, its reader values (only
    the ones asked for) and their truth (part of a piece's key)."""

    __slots__ = ("paper", "reader", "truth")

    def __init__(self, item: ItemView, number: int, fields: frozenset[str]) -> None:
        self.paper = _paper_key(item)
        reason = single_line(item.reason)
        pad = number_pad(number)
        values = {
            "number": number,
            "reason": reason,
            "more_url": safe_url(item.more_url),
            "less_url": safe_url(item.less_url),
            "text_pad": pad,
        }
        if "matched" in fields:
            values["matched"] = tuple(filter(None, map(single_line, item.matched)))
        if "text_reason" in fields:
            values["text_reason"] = text_reason(reason, pad)
        self.reader: dict[str, Any] = values
        self.truth = (bool(reason), bool(values["more_url"]), bool(values["less_url"]))


def item_values(items: Sequence[ItemView], fields: frozenset[str]) -> list[ItemValues]:
    """Each item's :class:`ItemValues` (``fields``: the reader values the renderers read),
    made once per digest for both parts; what item_context makes of the same item."""
    return [ItemValues(item, number, fields) for number, item in enumerate(items, start=1)]


_LOOP_VALUE: Mapping[str, Callable[[int, int], Any]] = {
    "index": lambda i, n: i + 1,
    "index0": lambda i, n: i,
    "revindex": lambda i, n: n - i,
    "revindex0": lambda i, n: n - i - 1,
    "first": lambda i, n: i == 0,
    "last": lambda i, n: i == n - 1,
    "length": lambda i, n: n,
}


class PieceRenderer:
    """Renders one template (with an items loop) from remembered per-paper pieces."""

    def __init__(
        self,
        env: Environment,
        frame: Template,
        body: Template,
        uses: _Uses,
        assigned: frozenset[str] = frozenset(),
    ) -> None:
        self._frame = frame
        self._body = body
        self._holes = uses.holes
        self._printed = uses.printed
        self._keyed = uses.keyed
        self._loop = uses.loop
        self.fields = frozenset(uses.holes + uses.keyed)  # the reader values it reads
        # Holes whose truth ItemValues.truth does not tell (their falsy values go in the key)
        self._falsy_holes = tuple(
            f for f in uses.holes if f not in ("reason", "more_url", "less_url")
        )
        self._assigned = assigned
        self._escape: Callable[[Any], str] = escape if env.autoescape else str
        nonce = secrets.token_hex(6)
        self._sentinel = {f: f"\x00{nonce}{i}\x00" for i, f in enumerate(READER_FIELDS)}
        self._field_of = {s: f for f, s in self._sentinel.items()}
        self._holes_re = re.compile("(" + "|".join(map(re.escape, self._field_of)) + ")")
        self._mark = f"\x00{nonce}items\x00"
        # the marker is ours (a NUL, hex digits, "items"): printed as it is
        self._mark_value: str = Markup(self._mark) if env.autoescape else self._mark  # noqa: S704
        self._pieces: dict[tuple[Any, ...], _Piece] = {}

    @classmethod
    def for_source(cls, env: Environment, source: str) -> PieceRenderer | None:
        """The piece renderer of template ``source`` in ``env``, or None if it has none."""
        split = _split_loop(env, source)
        if split is None:
            return None
        frame_source, body_source = split
        body_env = env.overlay(keep_trailing_newline=True)  # the body ends where the loop did
        try:
            frame_ast = env.parse(frame_source)
            body_ast = body_env.parse(body_source)
            # Names the body sets are its own unless the frame's context has them (checked
            # per render); any other name it reads would come from the context: no pieces.
            assigned = {n.name for n in body_ast.find_all(nodes.Name) if n.ctx == "store"}
            if not find_undeclared_variables(body_ast) <= {"item", "loop"} | assigned:
                return None
            if find_undeclared_variables(frame_ast) & {"items", "item", "loop"}:
                return None
            uses = _uses(body_ast)
            frame = env.from_string(frame_source)
            return cls(env, frame, body_env.from_string(body_source), uses, frozenset(assigned))
        except (TemplateError, _UnsupportedError):
            return None

    def render(
        self, context: Mapping[str, Any], items: Sequence[ItemView], values: Sequence[ItemValues]
    ) -> Body | None:
        """The body for ``context`` (every variable but ``items``) and ``items`` (with their
        :func:`item_values`, covering :attr:`fields`); None when it cannot be rendered from
        pieces (the caller renders it in full)."""
        if not self._assigned.isdisjoint(context):
            return None
        try:
            framed = self._frame.render({**context, _ITEMS_VAR: self._mark_value})
            before, found, after = framed.partition(self._mark)
            if not found or self._mark in after:
                return None
            chunks: list[str] = []
            partial = _add_text(chunks, "", before)
            count = len(items)
            escape_value = self._escape
            printed = self._printed
            for index, (item, value) in enumerate(zip(items, values, strict=True)):
                reader = value.reader
                filled = {f: escape_value(reader[f]) for f in printed if reader[f]}
                piece = self._piece(item, index, count, value)
                first = piece.first
                if first is not None:
                    if type(first) is str:
                        chunks.append(partial + first if partial else first)
                    else:
                        chunks.append(first.fill(filled, partial))  # type: ignore[union-attr]  # a _Fill
                    for line in piece.middle:
                        chunks.append(line if type(line) is str else line.fill(filled))  # type: ignore[union-attr]  # a _Fill
                    partial = ""
                last = piece.last
                partial += last if type(last) is str else last.fill(filled)  # type: ignore[union-attr]  # a _Fill
            partial = _add_text(chunks, partial, after)
        except _UnsupportedError:
            return None
        if partial or not chunks:  # a last line without a line break (or an empty body)
            chunks.append(partial)
            text = "\n".join(chunks)
        else:
            text = "\n".join(chunks) + "\n"
        if "\r" in text:  # a line break qp_body would normalize
            return None
        return Body(text, tuple(chunks))

    def _piece(self, item: ItemView, index: int, count: int, value: ItemValues) -> _Piece:
        reader = value.reader
        key: tuple[Any, ...] = (value.paper, value.truth)
        if self._keyed:
            key += tuple([reader[f] for f in self._keyed])
        if self._loop:
            key += tuple([_LOOP_VALUE[attr](index, count) for attr in self._loop])
        if self._falsy_holes:  # a falsy value is shown as it is ("", None): in the key
            key += tuple([(f, reader[f]) for f in self._falsy_holes if not reader[f]])
        piece = self._pieces.get(key)
        if piece is None:
            piece = self._render_piece(item, index, _Loop(index, count), reader)
            if len(self._pieces) >= PIECE_CACHE_SIZE:
                del self._pieces[next(iter(self._pieces))]  # the oldest
            self._pieces[key] = piece
        return piece

    def _render_piece(
        self, item: ItemView, index: int, loop: _Loop, reader: Mapping[str, Any]
    ) -> _Piece:
        context: ItemContext = item_context(item, index + 1)
        for field in self._holes:
            if reader[field]:
                setattr(context, field, self._sentinel[field])
        text = self._body.render(item=context, loop=loop)
        chunks = self._holes_re.split(text)
        if sum(chunk.count("\x00") for chunk in chunks[::2]):  # a sentinel did not survive
            raise _UnsupportedError("sentinel changed by the template")
        lines = list(self._lines(chunks))
        if len(lines) == 1:
            return _Piece(None, (), lines[0])
        middle: list[_Line] = []
        for line in lines[1:-1]:  # consecutive plain lines in one chunk
            if middle and type(line) is str and type(middle[-1]) is str:
                middle[-1] = f"{middle[-1]}\n{line}"
            else:
                middle.append(line)
        return _Piece(lines[0], tuple(middle), lines[-1])

    def _lines(self, chunks: list[str]) -> Iterator[_Line]:
        """The rendered body's lines, a line with holes as a :class:`_Fill`."""
        line: list[str | _Hole] = []
        for i, chunk in enumerate(chunks):
            if i % 2:
                line.append(_Hole(self._field_of[chunk]))
                continue
            first, *rest = chunk.split("\n")
            line.append(first)
            for text in rest:
                yield _line(line)
                line = [text]
        yield _line(line)


def _line(parts: list[str | _Hole]) -> _Line:
    if all(isinstance(part, str) for part in parts):
        return "".join(parts)  # type: ignore[arg-type]  # all str, checked above
    return _Fill(parts)


def _add_text(chunks: list[str], partial: str, text: str) -> str:
    """Add the frame's ``text`` after the current ``partial`` line; the new partial line."""
    first, *rest = text.split("\n")
    if not rest:
        return partial + first
    chunks.append(partial + first)
    chunks.extend(rest[:-1])  # line by line: most of the frame's lines recur
    return rest[-1]
