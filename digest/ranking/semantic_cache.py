"""Where the semantic ranker keeps paper embeddings: in memory, or in the store.

Neither imports torch: the pipeline builds a :class:`StoreEmbeddingCache` around its session
whatever the ranker, and only the semantic ranker (an optional extra) computes vectors.
A paper's vector is computed once per model and kept in ``paper_embedding``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlmodel import Session, col

from digest.store.models import Paper, PaperEmbedding

Vector = npt.NDArray[np.float32]


class EmbeddingCache(Protocol):
    """Paper embeddings by paper key, per model."""

    def load(self, keys: Sequence[str], model: str) -> dict[str, Vector]:
        """The cached vectors of those keys that have one."""
        ...

    def save(self, vectors: Mapping[str, Vector], model: str) -> None:
        """Keep these vectors (keys the cache cannot place are skipped)."""
        ...


class MemoryEmbeddingCache:
    """A dict: for ``digest rank`` (no store) and for one process's lifetime."""

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], Vector] = {}

    def load(self, keys: Sequence[str], model: str) -> dict[str, Vector]:
        found = ((key, self._vectors.get((model, key))) for key in keys)
        return {key: vector for key, vector in found if vector is not None}

    def save(self, vectors: Mapping[str, Vector], model: str) -> None:
        self._vectors.update(((model, key), vector) for key, vector in vectors.items())


class StoreEmbeddingCache:
    """The ``paper_embedding`` table, through the caller's session (never commits)."""

    _BATCH = 500  # keys per IN (...) query: far below every database's parameter limit

    def __init__(self, session: Session) -> None:
        self.session = session
        self.computed = 0  # vectors saved through this cache (tests and logs read it)

    def load(self, keys: Sequence[str], model: str) -> dict[str, Vector]:
        found: dict[str, Vector] = {}
        for start in range(0, len(keys), self._BATCH):
            statement = (
                select(col(Paper.key), col(PaperEmbedding.dim), col(PaperEmbedding.vector))
                .join(Paper, col(Paper.id) == col(PaperEmbedding.paper_id))
                .where(
                    col(PaperEmbedding.model) == model,
                    col(Paper.key).in_(list(keys[start : start + self._BATCH])),
                )
            )
            for key, dim, blob in self.session.execute(statement).all():
                vector = np.frombuffer(blob, dtype="<f4")
                if vector.size == dim:  # a truncated row is recomputed, not trusted
                    found[key] = vector.astype(np.float32)
        return found

    def save(self, vectors: Mapping[str, Vector], model: str) -> None:
        keys = list(vectors)
        ids: dict[str, int] = {}
        for start in range(0, len(keys), self._BATCH):
            statement = select(col(Paper.key), col(Paper.id)).where(
                col(Paper.key).in_(keys[start : start + self._BATCH])
            )
            ids.update((key, paper_id) for key, paper_id in self.session.execute(statement).all())
        rows = [
            PaperEmbedding(
                paper_id=ids[key],
                model=model,
                dim=int(vector.size),
                vector=np.asarray(vector, dtype="<f4").tobytes(),
            )
            for key, vector in vectors.items()
            if key in ids
        ]
        for row in rows:
            self.session.merge(row)  # a concurrent run may have stored the same vector
        self.session.flush()
        self.computed += len(rows)
