"""qp_body's one-pass cutting of long lines: many cuts per line, an escape at every offset of
every cut, trailing white space after several cuts; compared with the email package."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.delivery.qp import qp_body
from tests.test_qp import reference


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(150, 700), st.sampled_from(["a=", "aé", "a= ", "ab", "=", "é ·"])),
        min_size=1,
        max_size=4,
    ),
    st.randoms(use_true_random=True),
)
def test_long_lines_with_many_cuts_match(lines: list[tuple[int, str]], rng: random.Random) -> None:
    text = "\n".join("".join(rng.choices(chars, k=length)) for length, chars in lines)
    assert qp_body(text) == reference(text)


def test_every_escape_offset_over_several_cuts() -> None:
    for offset in range(80):
        for tail in ("", " ", "\t", "=", "é "):
            text = "a" * offset + "=" * 90 + "b" * 150 + "é" * 40 + tail
            assert qp_body(text) == reference(text), (offset, tail)
