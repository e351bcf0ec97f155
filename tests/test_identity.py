from datetime import UTC, datetime

import pytest

from digest.store.identity import canonical_key, normalize_doi, normalize_title, parse_arxiv_id
from digest.store.records import PaperRecord


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2410.17243", ("2410.17243", None)),
        ("2410.17243v3", ("2410.17243", 3)),
        ("oai:arXiv.org:2410.17243v2", ("2410.17243", 2)),
        ("http://arxiv.org/abs/2410.17243v1", ("2410.17243", 1)),
        ("https://arxiv.org/pdf/2410.17243v1.pdf", ("2410.17243", 1)),
        ("arXiv:0704.0001", ("0704.0001", None)),
        ("hep-th/9901001v2", ("hep-th/9901001", 2)),
        ("oai:arXiv.org:math.GT/0309136", ("math.gt/0309136", None)),
        ("not an id", None),
        ("2410.17243 and more", None),
    ],
)
def test_parse_arxiv_id(text: str, expected: tuple[str, int | None] | None) -> None:
    assert parse_arxiv_id(text) == expected


def test_versions_share_one_key() -> None:
    keys = {
        canonical_key(arxiv_id=i, doi=None, title="x")
        for i in ("2410.17243", "2410.17243v2", "oai:arXiv.org:2410.17243v5")
    }
    assert keys == {"arxiv:2410.17243"}


def test_key_precedence_arxiv_then_doi_then_title() -> None:
    assert canonical_key(arxiv_id="2401.00001", doi="10.1/x", title="T") == "arxiv:2401.00001"
    assert canonical_key(arxiv_id=None, doi="https://doi.org/10.1000/ABC", title="T") == (
        "doi:10.1000/abc"
    )
    assert canonical_key(arxiv_id=None, doi=None, title="T").startswith("title:")


def test_title_key_ignores_case_spacing_and_punctuation() -> None:
    a = PaperRecord(title="Breaking the Memory Barrier: Near Infinite Batch Size Scaling")
    b = PaperRecord(title="breaking  the memory barrier —\n near infinite batch-size scaling")
    assert a.key == b.key
    assert a.key != PaperRecord(title="Breaking the Memory Barrier").key


def test_normalize_title_nfkc() -> None:
    assert normalize_title("ﬁne-tuning") == "fine tuning"


def test_normalize_doi() -> None:
    assert normalize_doi("doi:10.48550/arXiv.2410.17243") == "10.48550/arxiv.2410.17243"
    assert normalize_doi("not a doi") is None


def test_record_is_hashable_and_keyed() -> None:
    record = PaperRecord(
        title="X", arxiv_id="2401.00001", published=datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert record.key == "arxiv:2401.00001"
    assert hash(record)
