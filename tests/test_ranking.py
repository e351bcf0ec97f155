"""The lexical ranker on real abstracts (tests/data/ranking/seed_papers.json) and on small
hand-made papers whose expected picks are obvious."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from digest.errors import ConfigError
from digest.ranking import (
    LexicalIndex,
    LexicalRanker,
    Pick,
    Profile,
    RankDoc,
    Ranker,
    build_profile,
    get_ranker,
)
from digest.ranking.lexical_index import LexicalParams

DATA = Path(__file__).parent / "data" / "ranking"


@pytest.fixture(scope="module")
def seed_docs() -> list[RankDoc]:
    papers = json.loads((DATA / "seed_papers.json").read_text(encoding="utf-8"))
    return [RankDoc(f"seed:{i}", p["title"], p["abstract"]) for i, p in enumerate(papers)]


@pytest.fixture(scope="module")
def seeds(seed_docs: list[RankDoc]) -> LexicalIndex:
    return LexicalRanker().prepare(seed_docs)


# The match rule alone, without completing short digests (LexicalParams.fill_floor): for
# tests of what an interest matches on a handful of papers.
MATCH_RULE = LexicalParams(fill_floor=math.inf)


def rank(
    index: LexicalIndex, *profiles: Profile, top_n: int = 10, **kw: object
) -> list[list[Pick]]:
    return LexicalRanker().rank(index, profiles, top_n=top_n, **kw)  # type: ignore[arg-type]  # a deliberately loose test input


def titles(index: LexicalIndex, picks: list[Pick]) -> list[str]:
    return [index.docs[p.index].title for p in picks]


def mentions(doc: RankDoc, pattern: str) -> bool:
    return re.search(pattern, f"{doc.title} {doc.abstract}", re.IGNORECASE) is not None


RL = r"reinforcement learning|\bRL\b|\bRLHF\b"


def test_get_ranker() -> None:
    ranker: Ranker = get_ranker()
    assert ranker.name == "lexical"
    with pytest.raises(ConfigError, match="unknown ranker"):
        get_ranker("magic")


def test_rl_profile_ranks_rl_papers_first(seeds: LexicalIndex) -> None:
    for keyword in ("reinforcement learning", "RL"):
        [picks] = rank(seeds, build_profile([keyword]))
        assert len(picks) == 10
        assert all(mentions(seeds.docs[p.index], RL) for p in picks), keyword
        # Title matches first: the top picks say it in the title.
        assert all(mentions(RankDoc("", t), RL) for t in titles(seeds, picks[:5]))
        scores = [p.score for p in picks]
        assert scores == sorted(scores, reverse=True)


def test_rl_and_its_acronym_rank_the_same(seeds: LexicalIndex) -> None:
    by_words, by_acronym = rank(
        seeds, build_profile(["reinforcement learning"]), build_profile(["rl"]), top_n=30
    )
    assert [p.index for p in by_words] == [p.index for p in by_acronym]


def test_pre_training_finds_every_spelling(seeds: LexicalIndex) -> None:
    [picks] = rank(seeds, build_profile(["pre-training"]), top_n=100)
    spelled = r"pre-?train|pre trained"
    found = {p.index for p in picks}
    expected = {i for i, d in enumerate(seeds.docs) if mentions(d, spelled)}
    assert found <= expected
    assert len(found) >= 0.8 * len(expected)
    assert any("Pretraining" in t for t in titles(seeds, picks))
    assert any("Pre-training" in t or "pre-trained" in t for t in titles(seeds, picks))


def test_unrelated_profile_gets_nothing_from_robotics(seed_docs: list[RankDoc]) -> None:
    robotics = [d for d in seed_docs if mentions(d, r"robot")]
    assert len(robotics) >= 5
    index = LexicalRanker().prepare(robotics)
    folding, robots = rank(index, build_profile(["protein folding"]), build_profile(["robots"]))
    assert folding == []
    assert robots


@pytest.mark.parametrize("keyword", ["model", "learning", "results", "the method"])
def test_common_words_alone_do_not_qualify(seeds: LexicalIndex, keyword: str) -> None:
    [picks] = rank(seeds, build_profile([keyword]))
    assert picks == []


def test_exclusions_are_honoured(seeds: LexicalIndex) -> None:
    plain, excluded = rank(
        seeds,
        build_profile(["language models"]),
        build_profile(["language models"], ["reinforcement learning"]),
        top_n=50,
    )
    assert any(mentions(seeds.docs[p.index], RL) for p in plain)
    assert excluded
    assert not any(
        mentions(seeds.docs[p.index], r"reinforcement learning|\bRL\b") for p in excluded
    )


def test_required_phrases_must_all_match(seeds: LexicalIndex) -> None:
    [picks] = rank(
        seeds,
        build_profile(["language models"], required=["reinforcement learning", "offline"]),
        top_n=50,
    )
    assert picks
    for p in picks:
        doc = seeds.docs[p.index]
        assert mentions(doc, RL) and mentions(doc, "offline")
    # A required phrase no paper contains: nothing qualifies.
    [none] = rank(seeds, build_profile(["language models"], required=["protein folding"]))
    assert none == []


def test_min_score_drops_weak_picks(seeds: LexicalIndex) -> None:
    loose, strict = rank(
        seeds,
        build_profile(["graph neural networks", "contrastive"]),
        build_profile(["graph neural networks", "contrastive"], min_score=0.5),
        top_n=100,
    )
    assert 0 < len(strict) < len(loose)
    assert all(p.score >= 0.5 for p in strict)
    assert strict == loose[: len(strict)]


def test_each_interest_is_bounded(seeds: LexicalIndex) -> None:
    [picks] = rank(seeds, build_profile(["reinforcement learning^2", "offline^0.5"]), top_n=100)
    params = seeds.params
    for p in picks:
        # The score is the strongest match, a bounded bonus for the other (substantial)
        # one, plus the re-ranking's word evidence, at most 1.
        extra = p.score - p.matches[0].contribution
        assert -1e-12 <= extra <= params.bonus + params.bag_weight + 1e-12
        for m in p.matches:
            assert 0 < m.contribution <= (2.0 if m.interest == "reinforcement learning" else 0.5)


# Small hand-made papers ---------------------------------------------------------------

TOY = [
    RankDoc(
        "a",
        "Diffusion models for images",
        "We study sampling speed.",
        ("Ada Lovelace",),
        ("cs.CV",),
    ),
    RankDoc(
        "b", "Sampling speed", "A new diffusion sampler for audio.", ("Alan Turing",), ("cs.SD",)
    ),
    RankDoc(
        "c",
        "Protein structure",
        "Folding proteins with transformers.",
        ("Grace Hopper", "A. Lovelace"),
        ("q-bio.BM",),
    ),
    RankDoc(
        "d",
        "Graph neural networks for molecules",
        "Message passing on molecular graphs.",
        ("Edsger Dijkstra",),
        ("cs.LG",),
    ),
    RankDoc(
        "e",
        "Graph neural networks for molecules",
        "Message passing on molecular graphs.",
        ("Edsger Dijkstra",),
        ("cs.LG",),
        upvotes=25,
    ),
]


@pytest.fixture(scope="module")
def toy() -> LexicalIndex:
    return LexicalRanker().prepare(TOY)


def test_explanations_name_fields(toy: LexicalIndex) -> None:
    profile = build_profile(["diffusion", "author:Lovelace", "cat:q-bio.BM"])
    [picks] = rank(toy, profile)
    by_key = {toy.docs[p.index].key: p for p in picks}
    assert set(by_key) == {"a", "b", "c"}
    assert {(m.interest, m.fields) for m in by_key["a"].matches} == {
        ("diffusion", ("title",)),
        ("Lovelace", ("authors",)),
    }
    # Best contribution first.
    assert [m.contribution for m in by_key["a"].matches] == sorted(
        (m.contribution for m in by_key["a"].matches), reverse=True
    )
    assert [(m.interest, m.fields) for m in by_key["b"].matches] == [("diffusion", ("abstract",))]
    assert {(m.interest, m.fields) for m in by_key["c"].matches} == {
        ("Lovelace", ("authors",)),
        ("q-bio.BM", ("categories",)),
    }
    assert by_key["b"].reason() == "matched \u201cdiffusion\u201d (abstract)"


def test_authors_match_tolerantly(toy: LexicalIndex) -> None:
    exact, initial, wrong_initial = rank(
        toy,
        build_profile([], authors=["ada lovelace"]),
        build_profile([], authors=["Lovelace, A."]),
        build_profile([], authors=["B. Lovelace"]),
    )
    assert {toy.docs[p.index].key for p in exact} == {"a", "c"}
    assert [(p.index, p.score) for p in exact] == [(p.index, p.score) for p in initial]
    assert wrong_initial == []


def test_ties_break_by_index_and_popularity_breaks_ties(toy: LexicalIndex) -> None:
    plain, popular = rank(
        toy,
        build_profile(["graph neural networks"]),
        build_profile(["graph neural networks"], popularity_weight=0.1),
    )
    assert [toy.docs[p.index].key for p in plain] == ["d", "e"]
    assert plain[0].score == plain[1].score
    assert [toy.docs[p.index].key for p in popular] == ["e", "d"]
    assert popular[0].score == pytest.approx(plain[0].score + 0.1 * np.log1p(25) / np.log1p(100))


def test_popularity_off_changes_nothing(seeds: LexicalIndex, seed_docs: list[RankDoc]) -> None:
    voted = [RankDoc(d.key, d.title, d.abstract, upvotes=i % 7) for i, d in enumerate(seed_docs)]
    profiles = [
        build_profile(["reinforcement learning", "pretraining"]),
        build_profile(["language models^2", "reasoning"]),
    ]
    assert rank(LexicalRanker().prepare(voted), *profiles) == rank(seeds, *profiles)


def test_popularity_only_profile(toy: LexicalIndex) -> None:
    [picks] = rank(toy, Profile(interests=(), popularity_weight=1.0))
    assert [toy.docs[p.index].key for p in picks] == ["e"]
    assert picks[0].reason() == "popular"
    assert rank(toy, Profile(interests=())) == [[]]


def test_duplicate_spellings_count_once(toy: LexicalIndex) -> None:
    once, twice = rank(
        toy, build_profile(["GNN"]), build_profile(["GNN", "graph neural networks^0.5"])
    )
    assert [p.score for p in once] == [p.score for p in twice]
    assert [m.interest for m in twice[0].matches] == ["GNN"]


def test_eligible_mask_and_per_profile_top_n(seeds: LexicalIndex) -> None:
    profiles = [
        build_profile(["reinforcement learning"]),
        build_profile(["language models"]),
        build_profile(["pretraining"]),
    ]
    full = rank(seeds, *profiles, top_n=50)
    banned = {full[0][0].index, full[1][1].index}

    def eligible(start: int, stop: int) -> np.ndarray:
        mask = np.ones((stop - start, len(seeds.docs)), dtype=bool)
        mask[:, sorted(banned)] = False
        return mask

    masked = LexicalRanker().rank(seeds, profiles, top_n=[3, 0, 5], eligible=eligible)
    assert [len(p) for p in masked] == [3, 0, 5]
    assert masked[0] == [p for p in full[0] if p.index not in banned][:3]
    assert masked[2] == [p for p in full[2] if p.index not in banned][:5]


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 4096])
def test_chunk_size_does_not_change_results(seeds: LexicalIndex, chunk_size: int) -> None:
    keywords = [
        "reinforcement learning",
        "language models",
        "pretraining^2",
        "RLHF",
        "graph neural networks",
        "self-supervised",
        "robot manipulation^0.5",
        "in-context learning",
        "offline",
        "protein",
    ]
    profiles = [
        build_profile(
            keywords[i % 10 : i % 10 + 1 + i % 3],
            excludes=["robot"] if i % 4 == 0 else (),
            required=["transformer"] if i % 5 == 0 else (),
            min_score=0.5 if i % 6 == 0 else None,
            popularity_weight=0.3 if i % 7 == 0 else 0.0,
        )
        for i in range(23)
    ]
    tops = [i % 6 for i in range(23)]
    whole = LexicalRanker().rank(seeds, profiles, top_n=tops, chunk_size=len(profiles))
    assert sum(map(len, whole)) > 30
    assert LexicalRanker().rank(seeds, profiles, top_n=tops, chunk_size=chunk_size) == whole


def test_bad_arguments(seeds: LexicalIndex) -> None:
    profile = build_profile(["rl"])
    with pytest.raises(ValueError, match="top_n"):
        rank(seeds, profile, top_n=-1)
    with pytest.raises(ValueError, match="top_n"):
        LexicalRanker().rank(seeds, [profile], top_n=[1, 2])
    with pytest.raises(ValueError, match="shape"):
        rank(seeds, profile, eligible=lambda a, b: np.ones((1, 1), dtype=bool))
    assert LexicalRanker().rank(seeds, [], top_n=5) == []
    empty = LexicalRanker().prepare([])
    assert LexicalRanker().rank(empty, [profile], top_n=5) == [[]]


# Thresholds, phrases and near matches ------------------------------------------------


def test_off_topic_profile_gets_nothing_while_a_relevant_one_is_not_starved(
    seeds: LexicalIndex,
) -> None:
    off_topic, on_topic = rank(
        seeds,
        build_profile(["cryo-EM", "X-ray crystallography", "protein structure determination"]),
        build_profile(["offline RL", "imitation learning"]),
    )
    assert off_topic == []
    assert len(on_topic) == 10


PHRASES = [
    RankDoc("phrase", "Scaling study", "We train graph neural networks on molecules."),
    RankDoc("scattered", "Scaling study", "A graph of results: neural scaling over networks."),
    RankDoc("partial", "Scaling study", "We train deep neural networks on images."),
    RankDoc("mbrl", "Model-based reinforcement learning", "A learned dynamics model plans."),
    RankDoc("rl", "Reinforcement learning for LLMs", "RL-based tuning of a base model."),
    RankDoc("dyn", "Planning in latent space", "A dynamics model for reinforcement learning."),
]


@pytest.fixture(scope="module")
def phrases() -> LexicalIndex:
    return LexicalRanker(params=MATCH_RULE).prepare(PHRASES)


def test_phrase_beats_scattered_words_and_part_of_a_phrase_is_not_a_match(
    phrases: LexicalIndex,
) -> None:
    [picks] = rank(phrases, build_profile(["graph neural networks"]))
    keys = [phrases.docs[p.index].key for p in picks]
    assert keys[0] == "phrase"
    # "neural networks" without "graph" is too weak to be picked at all.
    assert "partial" not in keys
    if "scattered" in keys:
        scores = {phrases.docs[p.index].key: p.score for p in picks}
        assert scores["scattered"] < 0.75 * scores["phrase"]


def test_a_compound_qualifier_counts(phrases: LexicalIndex) -> None:
    # "model-based RL" first finds the paper that says "model-based", not the RL paper
    # that happens to say "RL-based" and "base model".
    [picks] = rank(phrases, build_profile(["model-based RL"]))
    assert phrases.docs[picks[0].index].key == "mbrl"
    assert all(p.score < picks[0].score for p in picks[1:])


def test_explanations_say_where_each_interest_matched(phrases: LexicalIndex) -> None:
    [picks] = rank(phrases, build_profile(["latent planning", "dynamics model^2"]))
    dyn = next(p for p in picks if phrases.docs[p.index].key == "dyn")
    assert [(m.interest, m.fields) for m in dyn.matches] == [
        ("dynamics model", ("abstract",)),
        ("latent planning", ("title",)),
    ]
    assert dyn.reason() == (
        "matched \u201cdynamics model\u201d (abstract); \u201clatent planning\u201d (title)"
    )


def test_no_phrase_across_a_sentence_end_or_an_and() -> None:
    index = LexicalRanker(params=MATCH_RULE).prepare(
        [
            RankDoc("phrase", "Control", "We learn robotics models from video."),
            RankDoc("sentence", "Control", "We study robotics. Models are learned from video."),
            RankDoc("and", "Control", "We study robotics and models learned from video."),
            RankDoc("other", "Planning", "Search over plans with a learned value."),
        ]
    )
    assert index.views().present[index.vocab["model robot"]].indices.tolist() == [0]
    # The two words in different clauses are scattered words, too weak to be picked.
    [picks] = rank(index, build_profile(["robotics models"]))
    assert [index.docs[p.index].key for p in picks] == ["phrase"]


def test_an_interest_joined_by_and_is_two_words_not_a_phrase() -> None:
    index = LexicalRanker(params=MATCH_RULE).prepare(
        [
            RankDoc("both", "Reasoning", "Math and code reasoning with verifiers."),
            RankDoc("apart", "Reasoning", "Math reasoning with verifiers. Code generation too."),
            RankDoc("math", "Reasoning", "Math reasoning with verifiers."),
            RankDoc("other", "Planning", "Search over plans with a learned value."),
        ]
    )
    compiled = index.compile("keyword", "math and code")
    assert compiled.pairs == () and not compiled.multiword
    # Both words in separate sentences are not penalised as scattered; one word is partial.
    [picks] = rank(index, build_profile(["math and code"]))
    scores = {index.docs[p.index].key: p.score for p in picks}
    assert set(scores) == {"both", "apart"}
    assert scores["apart"] > 0.75 * scores["both"]


def test_coverage_counts_a_feature_by_how_fully_it_is_stated() -> None:
    # Full when said outright (here in the title and the abstract: capped at one plain
    # mention), in part when the two words are one word apart.
    index = LexicalRanker().prepare(
        [
            RankDoc("next", "Robotics models", "robotics models for control"),
            RankDoc("apart", "Control", "robotics world models for control"),
        ]
    )
    pair = index.vocab["model robot"]
    held = index.views().held[pair].toarray().ravel()
    weights = index.weights_t[pair].toarray().ravel()
    assert held[0] == 1.0 < weights[0]
    assert 0.0 < held[1] == weights[1] < 1.0


def test_views_are_built_without_touching_the_index(seeds: LexicalIndex) -> None:
    """The presence and field views share or copy the weights' arrays, never change them."""
    before = seeds.weights_t.copy()
    views = seeds.views()
    seeds.views()
    assert np.array_equal(seeds.weights_t.indices, before.indices)
    assert np.array_equal(seeds.weights_t.data, before.data)
    assert views.present.nnz == before.nnz
    assert set(views.title.data) == set(views.abstract.data) == {1.0}
    # Every word or pair occurs in the title or the abstract; author and category keys in
    # neither.
    words = [i for key, i in seeds.vocab.items() if not key.startswith(("@", "#"))]
    either = (views.title + views.abstract)[words]
    assert either.nnz == views.present[words].nnz
    assert (views.title + views.abstract).nnz == either.nnz


def test_one_typed_word_matches_only_whole() -> None:
    """An acronym or a hyphenated compound is one concept: a paper holding only some of
    the words it stands for does not match it, however many of them."""
    index = LexicalRanker(params=MATCH_RULE).prepare(
        [
            RankDoc("acronym", "Scaling RLAIF", "We train with RLAIF on dialogue tasks."),
            RankDoc(
                "spelled",
                "Feedback from models",
                "Reinforcement learning from AI feedback replaces human raters.",
            ),
            RankDoc(
                "parts",
                "Safer AI assistants",
                "Reinforcement learning from human feedback makes AI assistants safer.",
            ),
            RankDoc("other", "Planning", "Search over plans with a learned value."),
        ]
    )
    assert index.compile("keyword", "RLAIF").whole
    assert not index.compile("keyword", "AI feedback").whole
    [picks] = rank(index, build_profile(["RLAIF"]))
    assert sorted(index.docs[p.index].key for p in picks) == ["acronym", "spelled"]
    compound = LexicalRanker(params=MATCH_RULE).prepare(
        [
            RankDoc("whole", "Model-based control", "A model-based planner for robots."),
            RankDoc("parts", "Control", "A model of the arm, based on physics, for robots."),
        ]
    )
    [picks] = rank(compound, build_profile(["model-based"]))
    assert [compound.docs[p.index].key for p in picks] == ["whole"]
