"""Synthetic-but-realistic inputs for ``bench/rank_scale.py``: papers and profiles.

Papers are recombined from the 202 real papers of the bundled sample listings
(``digest/demo/sample/*.txt.gz``): each synthetic paper keeps most sentences of one real abstract,
in order, and borrows one to three sentences from others; its title joins the halves of two
real titles. Topics therefore stay as concentrated as in a real listing (lots of LLM papers, a
few on robotics or speech), with realistic term statistics.

Profiles hold 3-8 interests drawn with Zipf popularity from a vocabulary of machine-learning
topics people actually subscribe to (many of which this sample barely covers, as in life),
a third of them narrowed ("efficient …", "… for robotics"), acronyms, and phrases cut from
the real titles; some carry weights, some have exclusions, a
few require a phrase, name an author or a category, or switch on the popularity prior.
"""

from __future__ import annotations

import random
import re

from digest.config.resources import sample_dir
from digest.parsers import read_listing_file
from digest.ranking import Interest, Profile, RankDoc
from digest.store.papers import merge_records

SAMPLE = sample_dir()
CATEGORIES = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "cs.RO", "stat.ML", "q-bio.BM", "eess.AS"]
SURNAMES = ["Smith", "Wang", "Li", "Zhang", "Müller", "Garcia", "Kim", "Nguyen", "Rossi", "Sato"]

_TOPIC_LINES = """
large language models|diffusion models|reinforcement learning|reasoning|mathematical reasoning
code generation|retrieval-augmented generation|LLM agents|tool use|multimodal models
vision-language models|video generation|text-to-image generation|image editing|3D reconstruction
gaussian splatting|neural radiance fields|robot manipulation|embodied agents|autonomous driving
speech recognition|text-to-speech|audio generation|music generation|machine translation
instruction tuning|preference optimization|reward models|alignment|safety|jailbreak attacks
hallucination|interpretability|mechanistic interpretability|sparse autoencoders|mixture of experts
quantization|pruning|knowledge distillation|efficient inference|long context|attention mechanisms
state space models|scaling laws|pre-training|self-supervised learning|contrastive learning
representation learning|fine-tuning|parameter-efficient fine-tuning|low-rank adaptation
in-context learning|chain-of-thought|test-time compute|synthetic data|data curation|benchmarks
evaluation of language models|question answering|summarization|information retrieval
recommendation systems|graph neural networks|knowledge graphs|time series forecasting
federated learning|differential privacy|continual learning|meta-learning|few-shot learning
domain adaptation|out-of-distribution detection|uncertainty estimation|bayesian inference
causal inference|optimal transport|generative adversarial networks|variational autoencoders
normalizing flows|flow matching|protein structure prediction|protein folding|drug discovery
molecular generation|medical imaging|weather forecasting|quantum machine learning
object detection|semantic segmentation|image classification|visual question answering
optical character recognition|document understanding|multilingual models|low-resource languages
world models|planning|imitation learning|offline reinforcement learning|multi-agent systems
human feedback|theorem proving|formal verification|program synthesis|software engineering agents
web agents|GUI agents|memory|personalization|dialogue systems|emotion recognition
video understanding|point clouds|pose estimation|human motion generation|avatars
visual tokenizers|autoregressive image generation|speculative decoding|kv cache|tokenization
curriculum learning|active learning|neural architecture search|hyperparameter optimization
"""
TOPICS = _TOPIC_LINES.strip().replace("\n", "|").split("|")
# People narrow topics down: "efficient diffusion models", "reasoning for code".
PREFIXES = [
    "efficient",
    "robust",
    "scalable",
    "multilingual",
    "interpretable",
    "private",
    "online",
    "sparse",
]
SUFFIXES = ["for robotics", "for healthcare", "for code", "for science", "evaluation"]

ACRONYM_INTERESTS = [
    "LLM", "RL", "RLHF", "DPO", "GRPO", "CoT", "LoRA", "RAG", "MoE", "VLM", "MLLM", "NeRF",
    "ViT", "GNN", "ASR", "TTS", "OCR", "VQA", "ICL", "SFT", "KD", "PEFT", "SSL", "VAE",
]  # fmt: skip
EXCLUSIONS = [
    "survey", "medical", "benchmark", "robotics", "speech", "video", "jailbreak", "3D",
    "federated learning", "reinforcement learning", "diffusion", "autonomous driving",
]  # fmt: skip


def sample_papers() -> list[tuple[str, str]]:
    """(title, abstract) of the 202 distinct papers of the bundled sample listings."""
    records = []
    for page in sorted(SAMPLE.glob("*.txt.gz")):
        records.extend(read_listing_file(page).records)
    return [(r.title, r.abstract) for r in merge_records(records).values() if r.abstract]


def zipf(n: int, s: float = 0.9) -> list[float]:
    """Zipf weights: a few items are much more popular than the rest."""
    return [1.0 / (rank + 1) ** s for rank in range(n)]


def synth_papers(n: int, rng: random.Random) -> list[RankDoc]:
    """``n`` papers recombined from the real sample (see the module docstring)."""
    seeds = sample_papers()
    split = [[s for s in re.split(r"(?<=[.!?])\s+", a) if len(s) > 20] for _, a in seeds]
    docs = []
    for i in range(n):
        base = rng.randrange(len(seeds))
        own = [s for s in split[base] if rng.random() < 0.8] or split[base][:1]
        for _ in range(rng.randint(1, 3)):
            other = split[rng.randrange(len(seeds))]
            if other:
                own.insert(rng.randint(0, len(own)), rng.choice(other))
        head, _, tail = seeds[base][0].partition(":")
        donor = seeds[rng.randrange(len(seeds))][0].split(":")[-1].strip()
        title = f"{head}: {donor}" if tail and rng.random() < 0.5 else seeds[base][0]
        docs.append(
            RankDoc(
                key=f"synth:{i}",
                title=title,
                abstract=" ".join(own),
                authors=tuple(
                    f"{rng.choice('ABCDEFGHJK')}. {rng.choice(SURNAMES)}{rng.randint(0, 300)}"
                    for _ in range(rng.randint(1, 6))
                ),
                categories=tuple(rng.sample(CATEGORIES, rng.randint(1, 3))),
                upvotes=rng.choice([None, 0, 1, 3, 10, 40, 120]),
            )
        )
    return docs


def title_phrases(rng: random.Random, size: int = 400) -> list[str]:
    """Two- and three-word phrases cut from the real titles (people copy titles)."""
    words = [w for t, _ in sample_papers() for w in re.findall(r"[A-Za-z][A-Za-z-]+", t)]
    pool = sorted({" ".join(words[i : i + k]) for k in (2, 3) for i in range(len(words) - k)})
    rng.shuffle(pool)
    return pool[:size]


def synth_profiles(n: int, rng: random.Random) -> list[Profile]:
    """``n`` profiles of 3-8 interests (see the module docstring)."""
    topics, acronyms = TOPICS[:], ACRONYM_INTERESTS[:]
    rng.shuffle(topics)
    rng.shuffle(acronyms)
    phrases = title_phrases(rng)
    pools = [(topics, zipf(len(topics))), (acronyms, zipf(len(acronyms))), (phrases, None)]
    profiles = []
    for _ in range(n):
        interests = []
        for _ in range(rng.randint(3, 8)):
            pool, weights = rng.choices(pools, [0.7, 0.15, 0.15])[0]
            text = rng.choices(pool, weights)[0] if weights else rng.choice(pool)
            if pool is topics and rng.random() < 0.3:
                text = (
                    f"{rng.choice(PREFIXES)} {text}"
                    if rng.random() < 0.5
                    else f"{text} {rng.choice(SUFFIXES)}"
                )
            interests.append(Interest(text, rng.choice([1.0, 1.0, 1.0, 1.0, 2.0, 0.5, 3.0])))
        if rng.random() < 0.1:
            surname = f"{rng.choice(SURNAMES)}{rng.randint(0, 300)}"
            interests.append(Interest(surname, 1.0, "author"))
        if rng.random() < 0.1:
            interests.append(Interest(rng.choice(CATEGORIES), 0.5, "category"))
        excludes = tuple(rng.sample(EXCLUSIONS, rng.randint(1, 2))) if rng.random() < 0.2 else ()
        required = (rng.choice(topics[:20]),) if rng.random() < 0.03 else ()
        profiles.append(
            Profile(
                tuple(interests),
                excludes,
                required,
                min_score=0.5 if rng.random() < 0.05 else None,
                popularity_weight=0.2 if rng.random() < 0.1 else 0.0,
            )
        )
    return profiles
