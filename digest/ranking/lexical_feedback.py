"""Learning from the reader's ratings: papers like the ones rated up, less like those down.

Rocchio-style, in the ranker's own BM25F space. Each rated paper becomes one row over the
index's features: its ``FEEDBACK_TERMS`` most distinctive words and neighbour pairs
(``idf x`` saturated frequency, the title counted ``title_boost`` times; generic words
left out) and its authors, each weighted by its share of that total. A paper's
*likeness* to it is the weighted share of those features it states (each capped at one
plain mention, as coverage is), mapped from ``[LIKE_FROM, LIKE_FULL]`` to ``[0, 1]``: a
paper on the same subject in the same words is close to 1, one that shares a few common
words of the field is 0.

How the kernel uses it (:mod:`digest.ranking.lexical_kernel`): a paper gains
``like_weight`` times its likeness to the closest paper rated up, divided by ``1 + v /
like_damp`` where ``v`` is the score the profile's interests give it, and loses
``dislike_weight`` times its likeness to the closest paper rated down, unless a paper
rated up is at least as alike (the nearer rating says which side it is on: a paper shown
on weak evidence and rated down does not pull down one closest to a paper rated up). Both
are small
against a matching interest (a phrase in a title is worth 0.4–0.7), so the reader's own
interests dominate; the division keeps them dominant where they are strongest: a rating
mostly reorders the weak matches and brings the unmatched, and rarely lifts a paper the
interests already rank high above one they rank higher still (a binary vote on a paper
of the reader's field says "this field", not "above that one"). A paper no interest
matches may still be picked for its likeness alone, unless it is alike to a paper rated
down too (likeness from ``like_from``, however much more it is like one rated up: no
interest vouches for it, and the reader turned down something near it), and at most
``max(1, top // 4)`` of them per digest (or, when fewer than ``top`` papers match, as
many as fill the slots that completing the digest with weaker evidence leaves empty, see
``LexicalRanker``'s ``_complete``) and never more than the number of papers rated up, so
one vote never floods a digest. Exclusions and required phrases are applied
after, as always. A pick that owes anything to a rated paper names it: ``like
“Barlow Twins: …” that you rated up``.

Rows are shared by everyone who rated the same paper (keyed by paper key); a profile with
no ratings adds nothing to the plan and costs nothing in the kernel.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from digest.ranking.base import Profile, RankDoc
from digest.ranking.lexical_evidence import pair_key
from digest.ranking.lexical_index import LexicalIndex, Matrix, Views, compiled_matrix

FEEDBACK_TERMS = 20  # distinctive features kept per rated paper
SHARE_FLOOR = 0.05  # shares below this are left out (they count for nothing anyway)
TITLE_CHARS = 60  # a rated paper's title in explanations is cut here


@dataclass(frozen=True, eq=False)
class Ratings:
    """The run's rated papers, compiled. Row ``r`` of ``likeness`` is rated paper ``r``."""

    votes: Matrix  # profiles x rated papers: +1 rated up, -1 rated down
    likeness: Matrix  # rated papers x docs, in (0, 1], sorted indices
    docs: list[RankDoc]  # the rated papers (the semantic ranker embeds them)
    titles: list[str]  # their titles as explanations show them
    liked: npt.NDArray[np.int64]  # per profile: how many papers it rated up


def short_title(title: str) -> str:
    """A title cut to about ``TITLE_CHARS`` characters at a word boundary, with an ellipsis."""
    text = " ".join(title.split())
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[:TITLE_CHARS].rsplit(" ", 1)[0].rstrip(",:;.-")
    return cut + "\u2026"


def build_ratings(index: LexicalIndex, views: Views, profiles: Sequence[Profile]) -> Ratings:
    """Compile every profile's rated papers (see the module docstring)."""
    n = len(profiles)
    row_of: dict[str, int] = {}
    docs: list[RankDoc] = []
    owners: list[int] = []
    columns: list[int] = []
    votes: list[float] = []
    liked = np.zeros(n, dtype=np.int64)
    for p, profile in enumerate(profiles):
        seen: set[int] = set()
        for rated in profile.rated:
            row = row_of.setdefault(rated.paper.key, len(docs))
            if row == len(docs):
                docs.append(rated.paper)
            if row in seen or rated.vote == 0:
                continue
            seen.add(row)
            owners.append(p)
            columns.append(row)
            votes.append(1.0 if rated.vote > 0 else -1.0)
            liked[p] += rated.vote > 0
    vote_matrix = sp.csr_matrix((votes, (owners, columns)), shape=(n, len(docs)))
    vote_matrix.sort_indices()
    rows = [_row(index, doc) for doc in docs]
    share = sp.csr_matrix(compiled_matrix(rows, len(index.vocab)) @ views.held)
    share.data[share.data < SHARE_FLOOR] = 0.0
    share.eliminate_zeros()
    share.sort_indices()
    return Ratings(
        votes=vote_matrix,
        likeness=share,
        docs=docs,
        titles=[short_title(doc.title) for doc in docs],
        liked=liked,
    )


def _row(index: LexicalIndex, doc: RankDoc) -> list[tuple[int, float]]:
    """A rated paper's most distinctive features with their shares (sorted by feature)."""
    p = index.params
    analyzer = index.analyzer
    generic = analyzer.generic_terms
    counts: defaultdict[str, float] = defaultdict(float)
    for boost, text in ((p.title_boost, doc.title), (1.0, doc.abstract)):
        for clause in analyzer.segments(text):
            for term in clause:
                counts[term] += boost
            for a, b in itertools.pairwise(clause):
                if a not in generic or b not in generic:
                    counts[pair_key(a, b)] += boost
    weights = {
        feature: index.feature_idf(feature) * tf * (p.k1 + 1) / (tf + p.k1)
        for feature, tf in counts.items()
        if feature not in generic
    }
    best = heapq.nlargest(FEEDBACK_TERMS, weights.items(), key=lambda item: (item[1], item[0]))
    authors = {k for name in doc.authors for k in analyzer.author_keys(name)}
    if best and authors:  # an author counts like one of the paper's better words
        typical = best[len(best) // 2][1]
        best += [(key, typical) for key in sorted(authors)]
    total = math.fsum(weight for _, weight in best)
    row = {index.vocab[f]: w / total for f, w in best if f in index.vocab and total > 0}
    return sorted(row.items())
