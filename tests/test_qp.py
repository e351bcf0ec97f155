"""qp_body: byte for byte what set_content(cte="quoted-printable") writes on the wire."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.delivery.message import _text_part
from digest.delivery.qp import _HEX, _SAFE, encode_lines, qp_body
from digest.delivery.wire import WIRE_POLICY


def reference(text: str) -> bytes:
    """The body of the reference part (what follows its blank line)."""
    raw = _text_part(text, "plain").as_bytes(policy=WIRE_POLICY)
    return raw.split(b"\r\n\r\n", 1)[1]


def line_with(prefix: int, tail: str) -> str:
    return "a" * prefix + tail


EDGES = [
    "",
    "\n",
    "no final newline",
    "two\n\nblank lines\n\n",
    ".",
    ".\n.\n",
    "From the start\nFrom again\n",
    "a = b == c\n",
    "=\n==\n===\n",
    "trailing space \ntrailing tab\t\n  \n\t\n",
    "mixed\r\nline\rends\n\rhere\r\n",
    "controls \x00\x01\x0b\x0c\x1b\x7f and \x85 and \u2028 line separators\n",
    "non-ASCII: Zoë Ångström · 李雷 — مرحبا 😀\n",
    "x" * 5000 + "\n",  # one very long word
    ("word " * 400).strip() + "\n",
    "=" * 300,
    "é" * 200,
    *[line_with(n, " ") for n in range(70, 80)],  # every room case of the trailing space
    *[line_with(n, "\t") for n in range(70, 80)],
    *[line_with(n, "=") for n in range(68, 80)],  # an escape at every offset of the cut
    *[line_with(n, "é") for n in range(68, 80)],
    *[line_with(n, "=x" + "a" * 80) for n in range(68, 80)],
    *["b" * n for n in range(74, 80)],  # 76 characters stay whole, 77 are cut
    *[line_with(n, "=") + "\n" + line_with(n, " =") for n in range(70, 78)],
]


@pytest.mark.parametrize("text", EDGES, ids=range(len(EDGES)))
def test_edge_cases_match_the_email_package(text: str) -> None:
    assert qp_body(text) == reference(text)


def test_long_lines_with_escapes_and_trailing_space() -> None:
    long = "a=b " * 60  # escapes at every offset of the cuts, a space at the end
    text = f"{long}\n{long}\n{long.strip()}"
    assert qp_body(text) == reference(text)


def test_lone_surrogates_fail_like_the_reference() -> None:
    with pytest.raises(UnicodeEncodeError):
        reference("bad \udc80")
    with pytest.raises(UnicodeEncodeError):
        qp_body("bad \udc80")


# Characters that exercise every rule: escapes, white space, line breaks, multi-byte UTF-8.
INTERESTING = st.sampled_from(list("ab =.\t\r\n\x00\x0c\x7f\x85é·—😀\u2028_?"))
TEXT = st.lists(
    st.one_of(INTERESTING, st.characters(exclude_categories=("Cs",))), max_size=400
).map("".join)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_random_text_matches_the_email_package(text: str) -> None:
    assert qp_body(text) == reference(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(60, 90), INTERESTING), min_size=1, max_size=8))
def test_random_lines_near_the_limit_match(lines: list[tuple[int, str]]) -> None:
    text = "\n".join("a" * length + char * 3 for length, char in lines)
    assert qp_body(text) == reference(text)


def test_work_buffers_reused_across_sizes_and_threads() -> None:
    """The kernel's buffers are kept per thread and grow: a short body after a long one (a
    buffer full of the long one's bytes), and bodies encoded on several threads at once,
    come out as the reference's."""
    long = ("é=" * 3000 + " \n") * 20
    short = "x = y \n"
    texts = [long, short, long[:5000], short, "", long]
    assert [qp_body(t) for t in texts] == [reference(t) for t in texts]
    expected = {t: reference(t) for t in texts}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(qp_body, texts * 20))
    assert results == [expected[t] for t in texts * 20]


def test_the_kernel_runs_uncompiled_too() -> None:
    """encode_lines is plain Python that Numba compiles: run as Python it gives the same."""
    text = "a" * 73 + "=b\t\nZoë · 李雷 \n\n" + "c" * 200 + " "
    data = text.encode()
    out = np.empty(8 * len(data) + 64, dtype=np.uint8)
    scratch = np.empty(3 * len(data) + 3, dtype=np.uint8)
    length = encode_lines(np.frombuffer(data, dtype=np.uint8), _HEX, _SAFE, out, scratch)
    assert out[:length].tobytes() == reference(text) == qp_body(text)
