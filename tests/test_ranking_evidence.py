"""Graded evidence per interest, the strongest interest first, honest explanations, and
learning from the reader's ratings (digest.ranking.lexical_evidence, lexical_feedback)."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest

from digest.ranking import LexicalRanker, Pick, Profile, RankDoc, Rated, build_profile
from digest.ranking.lexical_evidence import pair_key
from digest.ranking.lexical_index import LexicalIndex, LexicalParams
from digest.ranking.lexical_plan import build_plan

COMMON = "Experiments on several datasets show consistent gains over strong baselines."
# Filler papers give the words realistic document frequencies and the abstracts a
# realistic length (none says the test's words).
FILLER = [
    RankDoc(f"filler:{i}", title, f"{abstract} {COMMON}")
    for i, (title, abstract) in enumerate(
        [
            ("Scaling laws for language models", "Loss falls as a power law in compute."),
            ("Protein structure prediction", "We predict folds from sequences."),
            ("Speech synthesis with transformers", "Text to speech at low latency."),
            ("Federated optimisation", "Clients train locally and share updates."),
            ("Weather forecasting with graphs", "Message passing over the globe."),
            ("Tabular data benchmarks", "Gradient boosting still wins on tables."),
            ("Code generation evaluation", "Unit tests measure program correctness."),
            ("Image segmentation at scale", "Masks for every object in a photo."),
        ]
    )
]


def ranked(docs: list[RankDoc], *profiles: Profile, top: int = 10) -> list[list[Pick]]:
    """The grades as the match rule sees them: short digests are not completed here
    (``fill_floor`` off; completion is tested in test_ranking_fill.py)."""
    ranker = LexicalRanker(params=LexicalParams(fill_floor=math.inf))
    return ranker.rank(ranker.prepare(docs + FILLER), profiles, top_n=top)


def keys(docs: list[RankDoc], picks: list[Pick]) -> list[str]:
    every = docs + FILLER
    return [every[p.index].key for p in picks]


def test_each_evidence_grade_ranks_below_the_one_before() -> None:
    """Said as often in the same field, the phrase > all distinctive words near each other
    > the same words apart; in the title as well > in the abstract only. Each is explained
    as what it is."""
    docs = [
        RankDoc(
            "title",
            "Diffusion policy for robot arms",
            f"We control robot arms. {COMMON} The diffusion policy is fast.",
        ),
        RankDoc(
            "abstract",
            "Robot arms",
            f"We train a diffusion policy for the arm. {COMMON} The diffusion policy is fast.",
        ),
        RankDoc(
            "near",
            "Robot arms",
            f"Diffusion models guide the arm's policy. {COMMON} Diffusion models set the policy.",
        ),
        RankDoc(
            "apart",
            "Robot arms",
            f"Diffusion models plan each motion; diffusion models replan. {COMMON} A policy "
            "follows the plan. A policy acts.",
        ),
    ]
    [picks] = ranked(docs, build_profile(["diffusion policy"]), top=4)
    assert keys(docs, picks) == ["title", "abstract", "near", "apart"]
    scores = [p.score for p in picks]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == 4
    by_key = dict(zip(keys(docs, picks), picks, strict=True))
    evidence = {key: (p.matches[0].evidence, p.matches[0].fields) for key, p in by_key.items()}
    assert evidence == {
        "title": ("phrase", ("title", "abstract")),
        "abstract": ("phrase", ("abstract",)),
        "near": ("near", ("abstract",)),
        "apart": ("apart", ("abstract",)),
    }
    assert by_key["near"].reason() == (
        "matched \u201cdiffusion policy\u201d (words near each other, abstract)"
    )
    assert by_key["apart"].reason() == (
        "partly matched \u201cdiffusion policy\u201d (its words apart, abstract)"
    )


def test_the_rarest_word_alone_is_the_weakest_evidence() -> None:
    """ "Skill learning" finds "Skill Expansion and Composition" (the word in the title:
    weighted like any title word), below the phrase in the title; said to be partial,
    naming the word it found. The word alone in an abstract is too little."""
    docs = [
        RankDoc("title", "Skill learning for agents", f"Agents acquire behaviours. {COMMON}"),
        RankDoc("rarest", "Skill expansion and composition", f"Agents reuse behaviours. {COMMON}"),
        RankDoc("passing", "Agents", f"Agents reuse behaviours as one skill. {COMMON}"),
    ]
    [picks] = ranked(docs, build_profile(["skill learning"]))
    assert keys(docs, picks) == ["title", "rarest"]
    rarest = picks[1]
    assert (rarest.matches[0].evidence, rarest.matches[0].fields) == ("partial", ("title",))
    assert rarest.matches[0].words == ("skill",)
    assert rarest.reason() == (
        "partly matched \u201cskill learning\u201d (only \u201cskill\u201d, title)"
    )


def test_a_partial_title_match_is_not_claimed_as_the_phrase() -> None:
    """A title saying "Neural Network" is partial evidence for "graph neural networks",
    explained as such, never as "matched … (title)"."""
    docs = [
        RankDoc("partial", "Neural networks for molecules", "Message passing on molecules."),
        RankDoc("whole", "Graph neural networks for molecules", "Message passing."),
    ]
    [picks] = ranked(docs, build_profile(["graph neural networks"]))
    assert keys(docs, picks)[0] == "whole"
    partial = next(p for p in picks if keys(docs, [p]) == ["partial"])
    match = partial.matches[0]
    assert match.evidence == "partial" and match.partial
    assert match.words == ("neural", "networks")
    assert partial.reason().startswith("partly matched \u201cgraph neural networks\u201d")
    assert "(only \u201cneural networks\u201d, title)" in partial.reason()


def test_one_interest_squarely_met_beats_two_mentioned_in_passing() -> None:
    """Alternatives: the paper that is about one of them comes before the paper that
    mentions two of them in passing."""
    docs = [
        RankDoc(
            "strong",
            "Self-supervised learning of visual features",
            "We pretrain image encoders by self-supervised learning, without labels, and "
            "evaluate them on detection.",
        ),
        RankDoc(
            "scattered",
            "A benchmark for robot grasping",
            "Baselines include a contrastive learning encoder. We also try a masked "
            "autoencoder. Grasp success is measured on a real arm.",
        ),
    ]
    profile = build_profile(
        ["self-supervised learning", "contrastive learning", "masked autoencoder"]
    )
    [picks] = ranked(docs, profile)
    assert keys(docs, picks) == ["strong", "scattered"]
    scattered = picks[1]
    assert {m.interest for m in scattered.matches} == {"contrastive learning", "masked autoencoder"}
    # The second interest adds a bounded bonus, never its whole contribution.
    params = LexicalRanker().params
    first, second = (m.contribution for m in scattered.matches)
    assert scattered.score <= first + params.bonus + params.bag_weight
    assert scattered.score < first + second + params.bag_weight


def test_the_parts_of_a_plain_compound_count_as_words() -> None:
    """ "child-directed speech": a paper that says child, speech and directed close together
    (not as the phrase) is near evidence, as for "child directed speech"; before, the
    compound had to be said whole and only "speech" counted."""
    docs = [
        RankDoc(
            "near", "Language acquisition", f"A child hears speech; parents directed it. {COMMON}"
        ),
        RankDoc("speech", "Speech recognition", f"Speech to text. {COMMON}"),
    ]
    [picks] = ranked(docs, build_profile(["child-directed speech"]))
    assert keys(docs, picks) == ["near"]
    assert picks[0].reason() == (
        "matched \u201cchild-directed speech\u201d (words near each other, abstract)"
    )


def test_common_words_are_no_evidence_when_the_rarest_is_in_no_paper() -> None:
    """ "traffic time series": where no paper of the run says "traffic", a paper on time
    series of returns is not partly about it (an off-topic profile gets nothing); once a
    paper says "traffic", the word is real evidence elsewhere and partial credit is back."""
    docs = [RankDoc("ts", "Time series of returns", f"We stitch time series of returns. {COMMON}")]
    profile = build_profile(["traffic time series"])
    assert ranked(docs, profile) == [[]]
    traffic = RankDoc("traffic", "Traffic in cities", f"Jams at rush hour. {COMMON}")
    [picks] = ranked([*docs, traffic], profile)
    assert keys([*docs, traffic], picks) == ["ts"]
    assert picks[0].matches[0].words == ("time", "series")


def test_partial_evidence_needs_the_larger_part_of_the_rarity() -> None:
    """ "constitutional AI": papers saying only "AI" (artificial intelligence: all three of
    the acronym's features, its pair included) hold the commoner part of the interest, so
    they are not partly about it (before, each matched by coverage); completing a short
    digest may still list one for the word alone, said to be partial."""
    docs = [
        RankDoc("whole", "Constitutional AI", f"Harmless assistants from a constitution. {COMMON}"),
        RankDoc(
            "commoner",
            "AI assistants for everyone",
            f"AI helps users; artificial intelligence answers questions. {COMMON}",
        ),
        *(
            RankDoc(f"ai:{i}", f"AI for {topic}", f"Artificial intelligence in {topic}. {COMMON}")
            for i, topic in enumerate(["farming", "games", "music", "law", "art"])
        ),
    ]
    profile = build_profile(["constitutional AI"])
    [picks] = ranked(docs, profile)
    assert keys(docs, picks) == ["whole"]
    ranker = LexicalRanker()
    [completed] = ranker.rank(ranker.prepare(docs + FILLER), [profile], top_n=2)
    assert keys(docs, completed) == ["whole", "commoner"]
    assert completed[1].reason() == (
        "partly matched \u201cconstitutional AI\u201d (only \u201cAI\u201d, title, abstract)"
    )


def test_an_acronym_is_as_rare_as_one_thing_not_as_its_words() -> None:
    """The one-word-alone credit divides an interest by how rare each typed word is. "RLHF"
    stands for four terms, but papers saying it are as many as say its rarest term or inner
    pair: its rarity is that, never the sum of its terms' (which made it most of "online
    RLHF")."""
    index = LexicalRanker().prepare(
        [*FILLER, RankDoc("rlhf", "RLHF for chat", "Reinforcement learning from human feedback.")]
    )
    compiled = index.compile("keyword", "online RLHF")
    assert compiled.unit_words == ("online", "RLHF")
    terms = index.analyzer.terms("RLHF", query=True)
    names = terms + [pair_key(a, b) for a, b in itertools.pairwise(terms)]
    rarities = [index.feature_idf(name) for name in names]
    assert compiled.unit_idf[1] == max(rarities) < sum(index.feature_idf(t) for t in terms)
    assert compiled.unit_idf[0] == index.feature_idf("onlin")


def test_an_acronym_alone_counts_as_one_word() -> None:
    """The one-word-alone credit of an acronym is that of one word (its strongest term or
    pair), not the sum over the terms and pairs it stands for: "NLP" alone, said once, is
    no stronger evidence of "legal NLP" than "legal" alone, the rarer word (before, the
    three terms and two pairs of "natural language processing" made it three times more)."""
    docs = [
        RankDoc("whole", "Legal NLP benchmarks", f"Contracts and statutes for legal NLP. {COMMON}"),
        RankDoc("legal", "Reading contracts", f"Legal documents are long. {COMMON}"),
        RankDoc("nlp", "Reading documents", f"Natural language processing of documents. {COMMON}"),
        *(
            RankDoc(f"nlp:{i}", f"Models for {topic}", f"NLP for {topic}. {COMMON}")
            for i, topic in enumerate(["news", "chat", "search"])
        ),
    ]
    ranker = LexicalRanker()
    [picks] = ranker.rank(ranker.prepare(docs + FILLER), [build_profile(["legal NLP"])], top_n=10)
    evidence = {key: pick.matches[0] for key, pick in zip(keys(docs, picks), picks, strict=True)}
    assert evidence["legal"].words == ("legal",) and evidence["nlp"].words == ("NLP",)
    assert evidence["legal"].partial and evidence["nlp"].partial
    assert evidence["legal"].contribution > evidence["nlp"].contribution


def test_a_typed_word_counts_only_whole_inside_a_phrase() -> None:
    """ "VLM reward": a paper on reward models that never says vision-language model is
    not evidence of the VLM half."""
    docs = [
        RankDoc("vlm", "VLM rewards for robots", "A vision-language model scores each step."),
        RankDoc("reward", "Reward models for chat", "A language model scores each answer."),
    ]
    [picks] = ranked(docs, build_profile(["VLM reward"]))
    assert keys(docs, picks)[0] == "vlm"
    reward = [p for p in picks if keys(docs, [p]) == ["reward"]]
    assert not reward or reward[0].matches[0].words == ("reward",)


def test_an_optimizer_is_not_an_optimization() -> None:
    """ "Learned optimizers" is a phrase about optimizers that are learned; a paper on
    learning and optimization holds its stems' neighbours only if the stemmer merges the
    thing with the act, which it no longer does."""
    docs = [
        RankDoc(
            "optimizers", "Learned optimizers that scale", f"We meta-train optimizers. {COMMON}"
        ),
        RankDoc(
            "optimization",
            "Stable training of deep networks",
            f"Curriculum learning optimization makes training stable. {COMMON}",
        ),
    ]
    [picks] = ranked(docs, build_profile(["learned optimizers"]))
    assert keys(docs, picks)[0] == "optimizers"
    assert picks[0].matches[0].evidence == "phrase"
    assert all(p.matches[0].evidence != "phrase" for p in picks[1:])


def test_a_phrase_is_said_in_one_place_not_gathered_from_pieces() -> None:
    """ "online RLHF": "online RL" in one sentence and "RLHF" in another hold every word and
    neighbour pair of the phrase, but do not say it; the paper that says it (with at most
    one word between neighbours: "online, iterative RLHF") does."""
    docs = [
        RankDoc(
            "pieces",
            "Offline policy gradients for language models",
            f"RLHF is costly. {COMMON} We compare against online RL (PPO) baselines.",
        ),
        RankDoc(
            "said",
            "Preference data collection during training",
            f"We study online, iterative RLHF. {COMMON}",
        ),
    ]
    [picks] = ranked(docs, build_profile(["online RLHF"]))
    evidence = {keys(docs, [p])[0]: p.matches[0] for p in picks}
    assert evidence["said"].evidence == "phrase" and evidence["said"].fields == ("abstract",)
    assert "pieces" not in evidence or evidence["pieces"].evidence != "phrase"
    assert keys(docs, picks)[0] == "said"


def test_a_relation_participle_is_not_a_distinctive_word() -> None:
    """ "principle-driven alignment" is alignment by principles: a paper on aligning a model
    to written principles that never says "driven" holds all of the interest's topic
    (distinctive words: "principle", "alignment"), not a part of it; "driven" alone
    (a "data-driven alignment" paper) is no more than any paper saying "alignment"."""
    docs = [
        RankDoc(
            "principles",
            "Alignment of language models to written principles",
            f"Alignment by principles: models follow a constitution. {COMMON}",
        ),
        RankDoc(
            "driven",
            "Data-driven alignment of language models",
            f"We align models with curated data. {COMMON}",
        ),
    ]
    [picks] = ranked(docs, build_profile(["principle-driven alignment"]))
    evidence = {keys(docs, [p])[0]: p.matches[0] for p in picks}
    assert keys(docs, picks)[0] == "principles"
    assert evidence["principles"].evidence == "near" and not evidence["principles"].partial
    assert "driven" not in evidence or evidence["driven"].partial


def test_a_negation_is_part_of_the_phrase() -> None:
    """ "without human annotations": a paper that relies on human annotations does not say
    it, one that learns without any human annotations does (the stop words between do not
    count as words)."""
    docs = [
        RankDoc(
            "relying",
            "Reward models for chat",
            f"Reward models rely on costly human annotations. {COMMON}",
        ),
        RankDoc(
            "without",
            "Self-training for chat",
            f"The model improves itself without any human annotations. {COMMON}",
        ),
    ]
    [picks] = ranked(docs, build_profile(["without human annotations"]))
    evidence = {keys(docs, [p])[0]: p.matches[0] for p in picks}
    assert keys(docs, picks)[0] == "without"
    assert evidence["without"].evidence == "phrase"
    assert "relying" not in evidence or evidence["relying"].evidence != "phrase"


def test_a_subscriber_is_ranked_alike_whoever_else_is_in_the_run() -> None:
    """ "GNN" and "graph neural networks" are one thing but typed differently: "GNN" counts
    only whole, the spelled-out words partly. One subscriber's digest and explanations do
    not depend on which spelling another subscriber of the same run typed first; a profile
    listing both still counts the thing once."""
    docs = [
        RankDoc("partial", "Neural networks for molecules", "Message passing on molecules."),
        RankDoc("whole", "Graph neural networks for molecules", "Message passing."),
    ]
    acronym = build_profile(["GNN"])
    spelled = build_profile(["graph neural networks"])
    [alone] = ranked(docs, acronym)
    [_, together] = ranked(docs, spelled, acronym)
    assert together == alone
    assert keys(docs, alone) == ["whole"]
    [words_alone] = ranked(docs, spelled)
    [words_together, _] = ranked(docs, spelled, acronym)
    assert words_together == words_alone
    partial = next(p for p in words_alone if keys(docs, [p]) == ["partial"])
    assert partial.matches[0].words == ("neural", "networks")
    [both] = ranked(docs, build_profile(["GNN", "graph neural networks"]))
    assert keys(docs, both) == keys(docs, alone)
    assert [m.interest for m in both[0].matches] == ["GNN"]


# Learning from ratings ------------------------------------------------------------------

LIKED = RankDoc(
    "rated:barlow",
    "Barlow Twins: Self-Supervised Learning via Redundancy Reduction",
    "Redundancy reduction between twin embeddings of distorted images avoids collapse "
    "without negative pairs or momentum encoders.",
)
DISLIKED = RankDoc(
    "rated:survey",
    "A survey of robot grasping benchmarks",
    "We review grasping benchmarks, simulators and real-robot protocols.",
)
LEARNING = [
    RankDoc(
        "twin",
        "Redundancy reduction for video embeddings",
        "Twin embeddings of distorted clips, decorrelated by redundancy reduction, "
        "avoid collapse without negative pairs.",
    ),
    RankDoc("grasp", "Grasping benchmarks revisited", "Robot grasping benchmarks and protocols."),
    RankDoc("plain", "Image encoders without labels", "Self-supervised learning of encoders."),
]


def test_a_paper_like_one_rated_up_rises_and_says_why() -> None:
    profile = build_profile(["self-supervised learning", "robot grasping"])
    plain, learned = ranked(LEARNING, profile, replace(profile, rated=(Rated(LIKED, 1),)))
    assert "twin" not in keys(LEARNING, plain)  # no interest matches it
    assert "twin" in keys(LEARNING, learned)  # its likeness to the rated paper brings it
    twin = next(p for p in learned if keys(LEARNING, [p]) == ["twin"])
    # A long title is cut at a word, with an ellipsis.
    assert twin.reason() == (
        "like \u201cBarlow Twins: Self-Supervised Learning via Redundancy\u2026\u201d "
        "that you rated up"
    )
    # The reader's own interests still come first.
    assert keys(LEARNING, learned)[0] != "twin"


def test_a_paper_like_one_rated_down_falls() -> None:
    profile = build_profile(["self-supervised learning", "robot grasping^2"])
    plain, learned = ranked(LEARNING, profile, replace(profile, rated=(Rated(DISLIKED, -1),)))
    before = {keys(LEARNING, [p])[0]: p.score for p in plain}
    after = {keys(LEARNING, [p])[0]: p.score for p in learned}
    assert after["grasp"] < before["grasp"]
    assert after["plain"] == before["plain"]  # nothing like the rated paper: unchanged


def test_one_vote_never_floods_a_digest() -> None:
    """Ten papers just like the one rated up, none matching an interest: one vote brings
    at most one of them (and a digest of 4 at most one in any case)."""
    clones = [
        RankDoc(f"clone:{i}", f"Redundancy reduction of twin embeddings, part {i}", LIKED.abstract)
        for i in range(10)
    ]
    on_topic = [
        RankDoc(f"ssl:{i}", f"Self-supervised learning study {i}", "Encoders without labels.")
        for i in range(3)
    ]
    docs = clones + on_topic
    profile = build_profile(["self-supervised learning"])
    one_vote = replace(profile, rated=(Rated(LIKED, 1),))
    [picks] = ranked(docs, one_vote, top=4)
    brought = [k for k in keys(docs, picks) if k.startswith("clone:")]
    assert len(brought) == 1
    assert all(k.startswith("ssl:") for k in keys(docs, picks)[:3])


def test_ratings_fill_a_short_digest_at_most_one_paper_per_vote() -> None:
    """When fewer papers match than the digest holds, papers like the ones rated up may
    fill its empty slots, as many as papers rated up at most, each saying which it is like;
    a full digest still gives them at most ``max(1, top // 4)`` slots."""
    liked = [
        LIKED,
        RankDoc(
            "rated:coarsen",
            "Graph coarsening for molecular dynamics",
            "Coarsened molecular graphs keep the slow dynamics of proteins in solvent.",
        ),
        RankDoc(
            "rated:codec",
            "Neural audio codecs as speech tokens",
            "Residual vector quantization turns waveforms into discrete speech tokens.",
        ),
    ]
    titles = [
        "Redundancy reduction of twin embeddings",
        "Coarse graphs of molecular dynamics",
        "Discrete speech tokens from audio codecs",
    ]
    clones = [
        RankDoc(f"clone:{k}:{i}", f"{title}, part {i}", doc.abstract)
        for k, (title, doc) in enumerate(zip(titles, liked, strict=True))
        for i in range(3)
    ]
    profile = build_profile(["self-supervised learning"])
    votes = tuple(Rated(doc, 1) for doc in liked)
    short = [RankDoc("ssl:0", "Self-supervised learning study", "Encoders without labels.")]
    [picks] = ranked(clones + short, replace(profile, rated=votes), top=10)
    brought = [k for k in keys(clones + short, picks) if k.startswith("clone:")]
    assert "ssl:0" in keys(clones + short, picks)
    assert len(picks) == 4 and len(brought) == 3  # one per paper rated up, > top // 4 = 2
    for key, pick in zip(keys(clones + short, picks), picks, strict=True):
        if key in brought:
            assert [m.evidence for m in pick.matches] == ["liked"]
    [one] = ranked(clones + short, replace(profile, rated=votes[:1]), top=10)
    assert sum(k.startswith("clone:") for k in keys(clones + short, one)) == 1
    full = [
        RankDoc(f"ssl:{i}", f"Self-supervised learning study {i}", "Encoders without labels.")
        for i in range(12)
    ]
    [picks] = ranked(clones + full, replace(profile, rated=votes), top=10)
    assert len(picks) == 10
    assert sum(k.startswith("clone:") for k in keys(clones + full, picks)) <= 10 // 4


def test_exclusions_win_over_ratings() -> None:
    profile = build_profile(["self-supervised learning"], ["redundancy reduction"])
    [picks] = ranked(LEARNING, replace(profile, rated=(Rated(LIKED, 1),) * 1))
    assert "twin" not in keys(LEARNING, picks)
    required = build_profile(["self-supervised learning"], required=["encoders"])
    [picks] = ranked(LEARNING, replace(required, rated=(Rated(LIKED, 1),)))
    assert keys(LEARNING, picks) == ["plain"]


def test_ratings_of_one_profile_change_nothing_for_another() -> None:
    profile = build_profile(["self-supervised learning", "robot grasping"])
    alone = ranked(LEARNING, profile)[0]
    together = ranked(LEARNING, replace(profile, rated=(Rated(LIKED, 1),)), profile)[1]
    assert together == alone


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalRanker().prepare(LEARNING + FILLER)


def test_a_rated_paper_in_the_batch_is_most_like_itself(index: LexicalIndex) -> None:
    twin = LEARNING[0]
    plan = build_plan(index, [Profile((), rated=(Rated(twin, 1), Rated(LIKED, 1)))])
    likeness = plan.ratings.likeness.toarray()
    assert likeness[0].argmax() == 0 and likeness[0, 0] > likeness[1, 0] > 0
    assert plan.ratings.titles == [
        twin.title,
        "Barlow Twins: Self-Supervised Learning via Redundancy\u2026",
    ]


RL_RATED = RankDoc(
    "rated:rl",
    "Reinforcement learning for reasoning with verifiable rewards",
    "Policy optimisation with verifiable rewards teaches a language model long "
    "chain-of-thought reasoning on math problems.",
)
RL_LATER = [
    RankDoc(
        "matched",
        "Verifiable rewards for math reasoning",
        "Policy optimisation with verifiable rewards on math problems elicits long "
        f"chain-of-thought reasoning in a language model. {COMMON}",
    ),
    RankDoc(
        "unmatched",
        "Verifiable rewards for math problems",
        f"Policy optimisation with verifiable rewards on math problems. {COMMON}",
    ),
]


def test_a_rating_lifts_a_paper_less_the_more_the_interests_already_do() -> None:
    """What likeness to a paper rated up adds is ``like_weight`` x its graded likeness,
    divided by ``1 + v / like_damp`` where ``v`` is the interests' own score for the paper:
    the same paper, equally alike, gains less for a profile whose interest says it three
    times as strongly, and a paper no interest matches gains the full amount. The pick's
    "like …" explanation carries exactly what was added."""
    params = replace(LexicalParams(), bag_weight=0.0)  # scores are then the interests' own
    ranker = LexicalRanker(params=params)
    index = ranker.prepare(RL_LATER + FILLER)
    vote = (Rated(RL_RATED, 1),)
    weak, strong = build_profile(["chain-of-thought"]), build_profile(["chain-of-thought^3"])
    plan = build_plan(index, [replace(weak, rated=vote)])
    likeness = plan.ratings.likeness.toarray()[0]
    span = params.like_full - params.like_from
    graded = [min(max((c - params.like_from) / span, 0.0), 1.0) for c in likeness[:2]]
    assert min(graded) > 0  # both papers are alike to the rated one
    gains = []
    for profile in (weak, strong):
        plain, learned = ranker.rank(index, [profile, replace(profile, rated=vote)], top_n=5)
        [before] = [p for p in plain if p.index == 0]  # only "matched" matches an interest
        after = {p.index: p for p in learned}
        own = before.score
        gain = after[0].score - own
        assert gain == pytest.approx(params.like_weight * graded[0] / (1 + own / params.like_damp))
        [liked] = [m for m in after[0].matches if m.evidence == "liked"]
        assert liked.contribution == pytest.approx(gain)
        # Brought by its likeness alone (the short digest's empty slot): the full amount.
        assert after[1].score == pytest.approx(params.like_weight * graded[1])
        assert [m.evidence for m in after[1].matches] == ["liked"]
        gains.append(gain)
    assert gains[1] < gains[0]
    undamped = LexicalRanker(params=replace(params, like_damp=0.0))
    undamped_index = undamped.prepare(RL_LATER + FILLER)
    for profile in (weak, strong):  # like_damp 0: the old rule, the full amount for all
        plain, learned = undamped.rank(
            undamped_index, [profile, replace(profile, rated=vote)], top_n=5
        )
        gain = learned[0].score - plain[0].score
        assert learned[0].index == plain[0].index == 0
        assert gain == pytest.approx(params.like_weight * graded[0])


def test_a_paper_alike_to_one_rated_down_is_not_brought_by_likeness_alone() -> None:
    """No interest matches "twin" or "image"; both are like the paper rated up, "twin" a
    little more. "twin" is also alike to a paper rated down (less than to the one rated
    up, so no dislike is taken off it): it is not brought, and "image", alike to that
    paper rated up only, takes its place, saying which paper it is like. A paper that
    an interest matches keeps its place whatever it is alike to."""
    video = RankDoc(
        "rated:video",
        "Action recognition in video",
        "Video clips labelled with actions, and embeddings that recognise them.",
    )
    image = RankDoc(
        "image",
        "Redundancy reduction between twin image embeddings",
        "Decorrelated twin embeddings of distorted images avoid collapse.",
    )
    docs = [*LEARNING, image]
    profile = build_profile(["self-supervised learning", "robot grasping"])
    up, down = Rated(LIKED, 1), Rated(video, -1)
    ranker = LexicalRanker(params=LexicalParams(fill_floor=math.inf))
    index = ranker.prepare(docs + FILLER)
    likeness = build_plan(index, [replace(profile, rated=(up, down))]).ratings.likeness.toarray()
    twin, alike = likeness[:, 0], likeness[:, 3]
    assert twin[0] > alike[0] > index.params.like_from  # both like the paper rated up
    assert twin[0] > twin[1] >= index.params.like_from > alike[1]  # only twin like the other
    [before] = ranker.rank(index, [replace(profile, rated=(up,))], top_n=10)
    assert keys(docs, before) == ["grasp", "plain", "twin"]  # one vote, one paper brought
    [after] = ranker.rank(index, [replace(profile, rated=(up, down))], top_n=10)
    assert keys(docs, after) == ["grasp", "plain", "image"]
    assert after[-1].reason() == (
        "like \u201cBarlow Twins: Self-Supervised Learning via Redundancy\u2026\u201d "
        "that you rated up"
    )
    assert [p.score for p in after[:2]] == [p.score for p in before[:2]]
