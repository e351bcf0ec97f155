"""Text analysis shared by papers and profiles: text in, index terms out, clause by clause.

Steps, in order:

1. Unicode NFKC (ligatures, full-width forms, odd hyphens become plain characters).
2. Tokens are runs of letters and digits; a hyphen inside a word keeps the word together
   for step 3. Apostrophes, dashes and punctuation split. Some marks also end a *clause*
   (:meth:`Analyzer.segments`): a sentence end, ``;``, ``:``, a dash standing alone and a
   coordinating conjunction (:data:`CONJUNCTIONS`), because the ranker takes neighbouring
   words for a phrase and the words on either side of these are not one ("... for robotics.
   Models ...", "language models and agents"). A parenthetical is a clause of its own and
   the text around it runs on across it (``vision-language-action (VLA) models``).
3. Compounds. A hyphen between two words is a space (``vision-language`` = ``vision
   language``), unless the first part is a *bound prefix* (``pre``, ``self``, ``fine``,
   ``multi``, ``meta``, ...): then the parts are written together (``pre-trained`` →
   ``pretrained``). A free-standing prefix word is joined to the next word the same way
   (``pre trained`` → ``pretrained``). Joined words are never split again: there is no
   dictionary to tell ``pre|training`` from ``pre|sent``, and we do not need one, because
   the stemmer maps ``pretraining``, ``pretrained`` and ``pre-training`` to the same
   ``pretrain``. So ``pre-training`` = ``pretraining`` = ``pre-trained`` = ``pre trained``,
   ``fine-tuning`` = ``finetuning`` = ``fine-tuned``, ``self-supervised`` =
   ``selfsupervised``. A few closed compounds the field also writes as two words are split
   (:data:`COMPOUNDS`: ``dataset`` = ``data set``).
4. Acronyms from a fixed table (:data:`ACRONYMS`) are replaced by their expansion, so that
   ``RL`` and ``reinforcement learning`` give the same terms. In paper text an acronym must
   be written in its usual case (``RL``, ``CoT``, ``LoRA``, all capitals, or with a plural
   ``s``) so that ``cot`` or ``rag`` in prose are left alone; profile text is typed by people,
   so there case does not matter.
5. Accents are folded and text is case-folded; stop words and single letters are dropped.
6. Snowball English stemming (PyStemmer): ``models`` = ``model``; a few words keep their
   form where the stem would merge them with another word (:data:`UNSTEMMED`: ``based``,
   ``transformer``), and so do agent nouns in ``-izer``/``-iser``, a thing and not the act
   (``optimizers`` = ``optimiser`` ≠ ``optimization``, ``tokenizer`` ≠ ``token``).

Every token result (clause marks included) is cached per analyzer, so analysing the same
vocabulary again costs a dict lookup: 2,000 abstracts take about a fifth of a second.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping

import Stemmer


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Bound prefixes: a hyphen after them joins instead of splitting.
HYPHEN_PREFIXES: frozenset[str] = _words(
    "pre post self multi non semi co re un cross fine meta auto bi tri de anti inter intra "
    "sub super over under hyper mis"
)
# Prefixes that, written as a separate word, are joined to the next word. Only those that
# are rarely a word on their own in research prose ("over", "under", "sub" are left out).
FREE_PREFIXES: frozenset[str] = _words("pre post self multi non semi fine cross meta")

# Words that, after a hyphen, make the compound one adjective ("human-like", "reward-free",
# "hardware-aware"): such a compound is one typed word, never a typed word per part, since
# "like" or "free" on its own is any paper's word.
BOUND_SUFFIXES: frozenset[str] = _words("like free aware agnostic centric wise")

# Past participles that, after another word of a keyword, name how the paper relates to
# that word, not a topic of their own: "principle-driven alignment" is alignment by
# principles, "goal-conditioned RL" is RL conditioned on goals. The word before carries
# the topic (lexical_evidence.Units: not a distinctive unit).
RELATION_PARTICIPLES: frozenset[str] = _words(
    "driven guided conditioned directed inspired augmented grounded informed oriented "
    "induced enabled powered assisted generated constrained"
)

# Negations ("without", "no", "not") are not stop words: "without human annotations" is
# the opposite of "relying on human annotations", so a phrase that says one must not
# match the other.
STOP_WORDS: frozenset[str] = _words(
    "a about above after again against all also am an and any are as at be because been "
    "before being below between both but by can could did do does doing down during each et "
    "al etc few for from further had has have having he her here hers herself him himself his "
    "how i if in into is it its itself just me more most my myself nor now of off on "
    "once only or other our ours ourselves own same she should so some such than that the "
    "their theirs them themselves then there these they this those through to too until up "
    "upon us very via was we were what when where which while who whom why will with within "
    "would you your yours yourself yourselves e g ie eg i.e may might must shall thus "
    "hence however therefore whether yet"
)

# Words found in nearly every abstract. They stay searchable (they matter inside phrases such
# as "language model"), but the ranker gives them a low prior document frequency.
GENERIC_WORDS: frozenset[str] = _words(
    "model models method methods propose proposed approach approaches result results show "
    "shows demonstrate use using used based new novel performance perform improve improved "
    "improvement achieve achieves task tasks data dataset datasets train training trained "
    "learn learning learned paper work present introduce evaluate evaluation experiment "
    "experiments framework effective efficient problem study existing large significant "
    "significantly state art benchmark benchmarks technique techniques outperform outperforms "
    "various different network networks system systems algorithm algorithms challenge "
    "challenges key important high across specific provide well better however strong"
)

# Closed compounds the field also writes as two words: split, so that "pre-training dataset"
# has the neighbours "pre-training data" (stems: dataset -> data set).
COMPOUNDS: Mapping[str, str] = {
    "dataset": "data set",
    "datasets": "data sets",
    "codebase": "code base",
    "codebases": "code bases",
    "testbed": "test bed",
    "testbeds": "test beds",
    "timestep": "time step",
    "timesteps": "time steps",
    "keypoint": "key point",
    "keypoints": "key points",
    "feedforward": "feed forward",
}

# Words that join two things rather than modify one: "models and agents" does not say
# "model agents". As a word of its own, each ends the clause; inside a compound it is part of
# the word ("trial-and-error").
CONJUNCTIONS: frozenset[str] = _words("and or nor but")

# Words whose stem would merge them with a different word: "model-based" is not "base model".
UNSTEMMED: Mapping[str, str] = {
    "based": "based",
    "transformer": "transformer",
    "transformers": "transformer",
}

# Agent nouns made from "-ize" verbs name a thing, not the act: an "optimizer" is not an
# "optimization", a "tokenizer" not a "token" (the stemmer strips both to one stem). They
# keep their own stem, British spelling and plural folded: "optimisers" -> "optimizer".
_AGENT_NOUN = re.compile(r"^(\w{3,})i[sz]ers?$")

# Acronym -> expansion, in the acronym's usual spelling. Expansions must not contain acronyms.
ACRONYMS: Mapping[str, str] = {
    "AI": "artificial intelligence",
    "ML": "machine learning",
    "DL": "deep learning",
    "RL": "reinforcement learning",
    "DRL": "deep reinforcement learning",
    "MARL": "multi-agent reinforcement learning",
    "RLHF": "reinforcement learning from human feedback",
    "RLAIF": "reinforcement learning from artificial intelligence feedback",
    "RLVR": "reinforcement learning with verifiable rewards",
    "PPO": "proximal policy optimization",
    "DPO": "direct preference optimization",
    "GRPO": "group relative policy optimization",
    "MDP": "markov decision process",
    "MCTS": "monte carlo tree search",
    "MBRL": "model-based reinforcement learning",
    "IRL": "inverse reinforcement learning",
    "ICRL": "in-context reinforcement learning",
    "IL": "imitation learning",
    "BC": "behavior cloning",
    "TD": "temporal difference",
    "RM": "reward model",
    "PRM": "process reward model",
    "ORM": "outcome reward model",
    "LM": "language model",
    "LLM": "large language model",
    "MLLM": "multimodal large language model",
    "VLM": "vision-language model",
    "LVLM": "large vision-language model",
    "VLA": "vision-language-action",
    "MLM": "masked language model",
    "SLM": "small language model",
    "PLM": "pre-trained language model",
    "LRM": "large reasoning model",
    "LMM": "large multimodal model",
    "CPT": "continual pre-training",
    "ICL": "in-context learning",
    "CoT": "chain-of-thought",
    "PEFT": "parameter-efficient fine-tuning",
    "SFT": "supervised fine-tuning",
    "LoRA": "low-rank adaptation",
    "KD": "knowledge distillation",
    "RAG": "retrieval-augmented generation",
    "MoE": "mixture of experts",
    "SSL": "self-supervised learning",
    "MAE": "masked autoencoder",
    "VAE": "variational autoencoder",
    "SAE": "sparse autoencoder",
    "GAN": "generative adversarial network",
    "GNN": "graph neural network",
    "CNN": "convolutional neural network",
    "RNN": "recurrent neural network",
    "LSTM": "long short-term memory",
    "MLP": "multi-layer perceptron",
    "ViT": "vision transformer",
    "NAS": "neural architecture search",
    "NeRF": "neural radiance field",
    "PINN": "physics-informed neural network",
    "NLP": "natural language processing",
    "CV": "computer vision",
    "ASR": "automatic speech recognition",
    "TTS": "text-to-speech",
    "OCR": "optical character recognition",
    "VQA": "visual question answering",
    "QA": "question answering",
    "NER": "named entity recognition",
    "KG": "knowledge graph",
    "SLAM": "simultaneous localization and mapping",
    "OOD": "out-of-distribution",
}

# A token is a word (letters and digits, hyphens inside) or a mark where a phrase cannot
# continue: a sentence end (``.``, ``?``, ``!`` before a space or the end), ``;``, ``:``, a
# dash standing alone, a bracket, and a coordinating conjunction (:data:`CONJUNCTIONS`).
# Not commas, which separate list items as "and" does but also stacked modifiers ("large,
# pretrained models"), and not a period inside a number or a name (``1.5``, ``cs.LG``).
_TOKEN = re.compile(
    r"[^\W_]+(?:[-\u2010\u2011][^\W_]+)*|[.?!]+(?=\s|$)|[;:()\[\]\u2014]|\s[-\u2013]{1,2}\s"
)
_HYPHEN = re.compile(r"[-\u2010\u2011]")
_NAME_DROP = re.compile(r"[-\u2010\u2011'\u2019.]")
_NAME_WORD = re.compile(r"[^\W\d_]+")

# A cached token: its terms, and its folded form when it is one plain word that a preceding
# free-standing prefix may join (None otherwise). Marks have no terms and one of the three
# values below (compared by identity).
_Token = tuple[tuple[str, ...], str | None]
_BREAK: _Token = ((), ".")  # ends the clause
_OPEN: _Token = ((), "(")  # starts a parenthetical
_CLOSE: _Token = ((), ")")  # ends it (a stray one ends the clause)


def fold(text: str) -> str:
    """NFKC, accents removed, case-folded: ``Müller`` → ``muller``."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFKC", stripped).casefold()


class Analyzer:
    """Turns text into index terms; see the module docstring for the rules.

    ``terms(text)`` analyses paper text, ``terms(text, query=True)`` profile text (acronyms
    recognised in any case). Not thread-safe only in the benign sense: the caches are plain
    dicts, filled deterministically.
    """

    def __init__(
        self,
        *,
        stop_words: Iterable[str] = STOP_WORDS,
        hyphen_prefixes: Iterable[str] = HYPHEN_PREFIXES,
        free_prefixes: Iterable[str] = FREE_PREFIXES,
        acronyms: Mapping[str, str] = ACRONYMS,
        generic_words: Iterable[str] = GENERIC_WORDS,
        compounds: Mapping[str, str] = COMPOUNDS,
    ) -> None:
        self._stemmer = Stemmer.Stemmer("english")
        self._stop = frozenset(fold(w) for w in stop_words)
        self._hyphen_prefixes = frozenset(fold(p) for p in hyphen_prefixes)
        self._free_prefixes = frozenset(fold(p) for p in free_prefixes) & self._hyphen_prefixes
        self._stems: dict[str, str] = {}
        self._caches: tuple[dict[str, _Token], dict[str, _Token]] = ({}, {})
        # Expansions are analysed with an empty acronym table, so they cannot recurse.
        self._doc_acronyms: dict[str, tuple[str, ...]] = {}
        self._query_acronyms: dict[str, tuple[str, ...]] = {}
        self._compounds: dict[str, tuple[str, ...]] = {}  # empty while the table is analysed
        self._compounds = {fold(w): tuple(self.terms(split)) for w, split in compounds.items()}
        for acronym, expansion in acronyms.items():
            expanded = tuple(self.terms(expansion))
            for form in (acronym, acronym.upper()):
                self._doc_acronyms[form] = expanded
                self._doc_acronyms[form + "s"] = expanded
            self._query_acronyms[fold(acronym)] = expanded
            self._query_acronyms[fold(acronym) + "s"] = expanded
        self.generic_terms: frozenset[str] = frozenset(self._stem(fold(w)) for w in generic_words)
        for cache in self._caches:  # filled while the acronym table was still empty
            cache.clear()

    def terms(self, text: str, *, query: bool = False) -> list[str]:
        """The index terms of ``text``, clause by clause (see :meth:`segments`)."""
        return list(itertools.chain.from_iterable(self.segments(text, query=query)))

    def units(self, text: str) -> list[tuple[str, tuple[str, ...]]]:
        """Profile text's typed words, each with its terms: ``"LLM-guided RL"`` gives
        ``("LLM-guided", (larg, languag, model, guid))`` and ``("RL", (reinforc, learn))``.
        A typed word names one thing, so the ranker counts it only where all of it is
        said. A free-standing prefix and its word are one ("pre training"); stop words and
        punctuation are none. A hyphenated compound of plain words, each distinctive on its
        own, is one typed word per part (:meth:`_plain_parts`): "child-directed" gives
        ``child`` and ``direct``, so a paper about a child's view of the world holds part
        of it, as it would of "child directed"; the parts stay neighbours, so the phrase
        still counts most. An acronym, a bound prefix ("self-alignment"), a generic part
        ("model-based"), a stop word ("chain-of-thought") or a bound suffix ("human-like":
        :data:`BOUND_SUFFIXES`) keeps the compound whole. A part of
        :data:`RELATION_PARTICIPLES` after another word ("driven" of "principle-driven")
        stays a typed word, but the ranker does not count it as distinctive."""
        cache = self._caches[True]
        out: list[tuple[str, tuple[str, ...]]] = []
        pending: tuple[str, str] | None = None  # a free-standing prefix: (as typed, folded)
        for surface in _TOKEN.findall(unicodedata.normalize("NFKC", text)):
            token = cache.get(surface)
            if token is None:
                token = cache[surface] = self._token(surface, query=True)
            terms, joinable = token
            if pending is not None:
                typed, folded = pending
                pending = None
                if joinable is not None and terms:
                    out.append((f"{typed} {surface}", (self._stem(folded + joinable),)))
                    continue
                out.append((typed, (self._stem(folded),)))
            if terms and joinable is not None and joinable in self._free_prefixes:
                pending = (surface, joinable)
            elif terms:
                out.extend(self._plain_parts(surface) or [(surface, terms)])
        if pending is not None:
            out.append((pending[0], (self._stem(pending[1]),)))
        return out

    def _plain_parts(self, surface: str) -> list[tuple[str, tuple[str, ...]]]:
        """The parts of a hyphenated compound of plain, distinctive words, each with its
        terms; empty when the compound is one thing: a part is an acronym, a bound prefix,
        a generic word ("model-based") or a stop word (a set phrase: "chain-of-thought",
        "human-in-the-loop"), or the last part is a bound suffix ("human-like")."""
        parts = _HYPHEN.split(surface)
        if len(parts) < 2 or fold(parts[-1]) in BOUND_SUFFIXES:
            return []
        out: list[tuple[str, tuple[str, ...]]] = []
        for part in parts:
            folded = fold(part)
            if folded in self._hyphen_prefixes or folded in self._query_acronyms:
                return []
            terms = self._word(part, query=True)
            if all(term in self.generic_terms for term in terms):  # a stop word too
                return []
            out.append((part, terms))
        return out

    def segments(self, text: str, *, query: bool = False) -> list[list[str]]:
        """The terms of each clause of ``text`` in order; neighbours in a clause may form a
        phrase, words of different clauses never do ("... robotics. Models ..." does not
        say "robotics models"). A parenthetical is a clause of its own, listed after the
        text around it, which runs on across it: "vision-language-action (VLA) models" has
        the neighbours "action models"."""
        cache = self._caches[query]
        done: list[list[str]] = []
        asides: list[list[str]] = []
        outer: list[list[str]] = []  # clauses interrupted by an open bracket
        out: list[str] = []
        pending: str | None = None  # a free-standing prefix waiting for its word
        for surface in _TOKEN.findall(unicodedata.normalize("NFKC", text)):
            token = cache.get(surface)
            if token is None:
                token = cache[surface] = self._token(surface, query=query)
            terms, joinable = token
            if pending is not None:
                if joinable is not None and terms:
                    out.append(self._stem(pending + joinable))
                    pending = None
                    continue
                out.append(self._stem(pending))
                pending = None
            if terms:
                if joinable is not None and joinable in self._free_prefixes:
                    pending = joinable
                else:
                    out.extend(terms)
            elif token is _OPEN:
                outer.append(out)
                out = []
            elif token is _CLOSE and outer:
                asides.append(out)
                out = outer.pop()
            elif joinable is not None:  # a clause ends (a stray closing bracket too)
                (asides if outer else done).append(out)
                out = []
        if pending is not None:
            out.append(self._stem(pending))
        done.extend(outer)  # the text around a bracket never closed
        done.append(out)
        return [clause for clause in done + asides if clause]

    def author_keys(self, name: str, *, query: bool = False) -> tuple[str, ...]:
        """Keys an author name is matched on: ``@surname`` and ``@surname initial``.

        ``Yann LeCun``, ``Y. LeCun`` and ``LeCun, Yann`` share ``@lecun y``. A paper's author
        gets both keys; a profile's author gets the precise one when it has a first name or
        initial, else ``@surname`` (so ``LeCun`` alone matches any LeCun).
        """
        if "," in name:
            surname_part, given_part = name.split(",", 1)
            surnames, given = self._name_words(surname_part), self._name_words(given_part)
        else:
            words = self._name_words(name)
            surnames, given = words[-1:], words[:-1]
        if not surnames:
            return ()
        surname = "@" + surnames[-1]
        if not given:
            return (surname,)
        precise = f"{surname} {given[0][0]}"
        return (precise,) if query else (surname, precise)

    @staticmethod
    def category_key(category: str) -> str:
        """The key a category is matched on: ``cs.LG`` → ``#cs.lg`` (exact, case-folded)."""
        return "#" + category.strip().casefold()

    def _name_words(self, text: str) -> list[str]:
        return _NAME_WORD.findall(fold(_NAME_DROP.sub("", text)))

    def _stem(self, word: str) -> str:
        stem = self._stems.get(word)
        if stem is None:
            kept = UNSTEMMED.get(word)
            if kept is None:
                agent = _AGENT_NOUN.match(word)
                kept = f"{agent.group(1)}izer" if agent else self._stemmer.stemWord(word)
            stem = self._stems[word] = kept
        return stem

    def _token(self, surface: str, *, query: bool) -> _Token:
        if not surface[-1].isalnum():  # words end in a letter or digit, marks never do
            return _OPEN if surface in "([" else _CLOSE if surface in ")]" else _BREAK
        if fold(surface) in CONJUNCTIONS:
            return _BREAK
        parts = _HYPHEN.split(surface) if "-" in surface or "\u2010" in surface else [surface]
        groups: list[list[str]] = []
        joining = False
        for part in parts:
            folded = fold(part)
            if joining:
                groups[-1].append(folded)
            else:
                groups.append([part])
            joining = folded in self._hyphen_prefixes
        terms: list[str] = []
        for group in groups:
            if len(group) > 1:
                terms.append(self._stem(fold(group[0]) + "".join(group[1:])))
            else:
                terms.extend(self._word(group[0], query=query))
        joinable = None
        if len(groups) == 1 and len(parts) == 1 and len(terms) == 1:
            folded = fold(surface)
            if self._stem(folded) == terms[0]:  # a plain word, not an acronym
                joinable = folded
        return tuple(terms), joinable

    def _word(self, surface: str, *, query: bool) -> tuple[str, ...]:
        folded = fold(surface)
        expansion = self._query_acronyms.get(folded) if query else self._doc_acronyms.get(surface)
        if expansion is not None:
            return expansion
        split = self._compounds.get(folded)
        if split is not None:
            return split
        if folded in self._stop or (len(folded) == 1 and not folded.isdigit()):
            return ()
        return (self._stem(folded),)
