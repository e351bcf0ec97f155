"""The analyzer: compounds, acronyms, stemming and Unicode fold to the same terms."""

from __future__ import annotations

import itertools

import pytest

from digest.ranking.analyzer import ACRONYMS, Analyzer, fold


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer()


@pytest.mark.parametrize(
    "spellings",
    [
        ["pre-training", "pretraining", "pre-trained", "pre trained", "Pre-Trained", "pretrain"],
        ["fine-tuning", "finetuning", "fine-tuned", "fine tuned", "Fine-Tune"],
        ["self-supervised", "selfsupervised", "self supervised", "Self-Supervised"],
        ["vision-language", "vision language", "Vision–Language"],
        ["multi-head attention", "multihead attention"],
        ["models", "model", "Models"],
        ["state-of-the-art", "state of the art"],
    ],
)
def test_spellings_share_terms(analyzer: Analyzer, spellings: list[str]) -> None:
    expected = analyzer.terms(spellings[0])
    assert expected
    for text in spellings:
        assert analyzer.terms(text) == expected, text
        assert analyzer.terms(text, query=True) == expected, text


@pytest.mark.parametrize(
    ("acronym", "expansion"),
    [
        ("RL", "reinforcement learning"),
        ("RLHF", "reinforcement learning from human feedback"),
        ("LLMs", "large language models"),
        ("GNN", "graph neural network"),
        ("VLM", "vision-language model"),
        ("VLA", "vision language action"),
        ("ICL", "in-context learning"),
        ("CoT", "chain of thought"),
        ("PEFT", "parameter efficient finetuning"),
        ("LoRA", "low-rank adaptation"),
        ("SSL", "self-supervised learning"),
        ("MAE", "masked autoencoders"),
        ("DPO", "direct preference optimization"),
        ("NLP", "natural language processing"),
        ("ViTs", "vision transformers"),
        ("GAN", "generative adversarial networks"),
        ("MoE", "mixture-of-experts"),
        ("RAG", "retrieval augmented generation"),
    ],
)
def test_acronyms_match_both_ways(analyzer: Analyzer, acronym: str, expansion: str) -> None:
    # Paper says the acronym, profile the words; and the other way round.
    assert analyzer.terms(acronym) == analyzer.terms(expansion, query=True)
    assert analyzer.terms(expansion) == analyzer.terms(acronym, query=True)
    assert analyzer.terms(acronym.lower(), query=True) == analyzer.terms(expansion)


def test_every_acronym_expands_to_words(analyzer: Analyzer) -> None:
    for acronym in ACRONYMS:
        assert len(analyzer.terms(acronym)) >= 2, acronym


def test_acronyms_in_paper_text_need_their_usual_case(analyzer: Analyzer) -> None:
    # "cot" and "rag" in prose are words, not Chain-of-Thought or RAG.
    assert analyzer.terms("a baby cot") == ["babi", "cot"]
    assert analyzer.terms("RAG") != analyzer.terms("rag")
    assert analyzer.terms("COT") == analyzer.terms("CoT")


def test_unicode_and_case_are_folded(analyzer: Analyzer) -> None:
    assert fold("Müller") == "muller"
    assert analyzer.terms("Müller ﬁne\u2011tuning") == analyzer.terms("muller fine-tuning")
    assert analyzer.terms("ＬＡＲＧＥ Models") == analyzer.terms("large models")
    assert analyzer.terms("naïve café") == analyzer.terms("naive cafe")


def test_stop_words_and_single_letters_are_dropped(analyzer: Analyzer) -> None:
    assert analyzer.terms("the effect of a model on x and y") == ["effect", "model"]
    assert analyzer.terms("GPT-4 and 3D") == ["gpt", "4", "3d"]


def test_hyphen_is_a_space_unless_a_prefix(analyzer: Analyzer) -> None:
    assert analyzer.terms("zero-shot") == ["zero", "shot"]
    assert analyzer.terms("multi-head self-attention") == ["multihead", "selfattent"]
    # A dangling prefix before a stop word stays a word of its own.
    assert analyzer.terms("pre- and post-training") == ["pre", "posttrain"]


def test_a_compound_of_plain_words_is_a_typed_word_per_part(analyzer: Analyzer) -> None:
    """ "child-directed speech": a paper about what a child hears holds part of it, so each
    distinctive part is a typed word of its own; a compound that names one thing (an
    acronym, a bound prefix, a generic part, a set phrase with a stop word, a bound suffix:
    "human-like" is not "human" and "like", any paper's word) stays whole."""
    assert analyzer.units("child-directed speech") == [
        ("child", ("child",)),
        ("directed", ("direct",)),
        ("speech", ("speech",)),
    ]
    assert analyzer.units("spatio-temporal") == [("spatio", ("spatio",)), ("temporal", ("tempor",))]
    for whole in (
        "LLM-guided",
        "self-alignment",
        "model-based",
        "chain-of-thought",
        "X-ray",
        "human-like",
        "reward-free",
    ):
        assert [typed for typed, _ in analyzer.units(whole)] == [whole], whole
    # The terms, and so the phrase, are the same either way.
    assert analyzer.terms("child-directed speech", query=True) == ["child", "direct", "speech"]


def test_author_keys(analyzer: Analyzer) -> None:
    assert analyzer.author_keys("Yann LeCun") == ("@lecun", "@lecun y")
    for spelling in ("Y. LeCun", "LeCun, Yann", "yann lecun"):
        assert analyzer.author_keys(spelling, query=True) == ("@lecun y",)
    assert analyzer.author_keys("LeCun", query=True) == ("@lecun",)
    assert analyzer.author_keys("José Müller-Lüdenscheidt")[0] == "@mullerludenscheidt"
    assert analyzer.author_keys("  ") == ()
    assert analyzer.category_key(" cs.LG ") == "#cs.lg"


def test_results_do_not_depend_on_cache_state() -> None:
    warm = Analyzer()
    text = "Pre-trained LLMs and RL fine-tuning of ViTs"
    warm.terms(text.lower(), query=True)
    assert warm.terms(text) == Analyzer().terms(text)


@pytest.mark.parametrize(
    ("acronym", "expansion"),
    [
        ("IL", "imitation learning"),
        ("BC", "behavior cloning"),
        ("PRM", "process reward model"),
        ("MBRL", "model-based reinforcement learning"),
        ("LRMs", "large reasoning models"),
        ("CPT", "continual pretraining"),
    ],
)
def test_more_field_acronyms(analyzer: Analyzer, acronym: str, expansion: str) -> None:
    assert analyzer.terms(acronym) == analyzer.terms(expansion, query=True)
    assert analyzer.terms(acronym.lower(), query=True) == analyzer.terms(expansion)


def test_closed_compounds_split(analyzer: Analyzer) -> None:
    # "pre-training dataset" then has the neighbours of "pre-training data".
    assert analyzer.terms("pre-training datasets") == analyzer.terms("pretraining data sets")
    assert analyzer.terms("Dataset", query=True) == ["data", "set"]
    assert analyzer.terms("codebase") == analyzer.terms("code base")


def test_based_is_not_base(analyzer: Analyzer) -> None:
    # Stemming would make "model-based" and "base model" the same pair of words.
    assert analyzer.terms("model-based") == analyzer.terms("model based") == ["model", "based"]
    assert analyzer.terms("the base model") == ["base", "model"]


def test_an_agent_noun_is_not_the_act(analyzer: Analyzer) -> None:
    # The stemmer strips "optimizer" and "optimization" to one stem, "tokenizer" to "token",
    # "transformer" to "transform": a thing is not the act it is named after.
    assert analyzer.terms("optimizers") == analyzer.terms("Optimiser") == ["optimizer"]
    assert analyzer.terms("optimization") == analyzer.terms("optimize") != ["optimizer"]
    assert analyzer.terms("tokenizers") == ["tokenizer"] != analyzer.terms("tokens")
    assert analyzer.terms("Transformers") == ["transformer"] != analyzer.terms("transform")
    assert analyzer.terms("ViT") == ["vision", "transformer"]
    # Short words that merely end the same way are left to the stemmer.
    assert analyzer.terms("size sizes") == ["size", "size"]


def test_clauses_end_at_sentence_ends_and_conjunctions(analyzer: Analyzer) -> None:
    # Neighbours across these marks are not a phrase: "robot learning. Models" does not say
    # "learning models", nor "web text -- and more" "text more".
    text = "Robot learning. Models of 1.5B tokens; data: web text -- and more or less"
    assert analyzer.segments(text) == [
        ["robot", "learn"],
        ["model", "1", "5b", "token"],
        ["data"],
        ["web", "text"],
        ["less"],
    ]
    assert analyzer.segments(text, query=True) == analyzer.segments(text)
    assert analyzer.segments("Language models AND agents") == [["languag", "model"], ["agent"]]
    # A free-standing prefix is not joined to a word of the next clause.
    assert analyzer.segments("pre. Training") == [["pre"], ["train"]]


def test_commas_numbers_names_and_compounds_do_not_end_a_clause(analyzer: Analyzer) -> None:
    text = "Large, pretrained models in cs.LG learn by trial-and-error (1.5x faster)"
    assert analyzer.segments(text) == [
        ["larg", "pretrain", "model", "cs", "lg", "learn", "trial", "error"],
        ["1", "5x", "faster"],
    ]


def test_a_parenthetical_is_an_aside(analyzer: Analyzer) -> None:
    # The sentence runs on across the brackets: "action models" are neighbours.
    assert analyzer.segments("vision-language-action (VLA) models [e.g. OpenVLA] learn") == [
        ["vision", "languag", "action", "model", "learn"],
        ["vision", "languag", "action"],
        ["openvla"],
    ]
    # A stray closing bracket ends the clause; an unclosed one leaves its aside open.
    assert analyzer.segments("first step) second step (third step") == [
        ["first", "step"],
        ["second", "step"],
        ["third", "step"],
    ]


def test_terms_are_the_clauses_in_a_row(analyzer: Analyzer) -> None:
    for text in ("Robot learning. Models (LMs) and agents; data", "pre- and post-training"):
        assert analyzer.terms(text) == list(itertools.chain.from_iterable(analyzer.segments(text)))
