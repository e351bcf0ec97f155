"""The reader's feedback: "more like this" (+1) and "less like this" (-1) on papers.

One rating per subscriber and paper; rating again replaces it (and its time), clearing
deletes it. The ranker learns from each subscriber's most recent :data:`MAX_RATINGS`
ratings of each kind (:mod:`digest.ranking.lexical_feedback`); exclusions and required
phrases still decide what may be picked at all. Functions take a session and never commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

from digest.errors import ProfileError, UnknownPaperError
from digest.ranking.base import RankDoc, Rated
from digest.store.db import one_of
from digest.store.models import Feedback, Paper, Subscriber
from digest.store.papers import dialect_insert

VOTES = {"up": 1, "down": -1}
MAX_RATINGS = 50  # of each kind, the most recent: what the ranker learns from


@dataclass(frozen=True, slots=True)
class Rating:
    """One rating as the reader sees it."""

    key: str
    title: str
    vote: int  # +1 more like this, -1 less like this
    rated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """The form ``show --json`` prints and exports carry."""
        return {
            "key": self.key,
            "title": self.title,
            "vote": self.vote,
            "rated_at": self.rated_at.isoformat(),
        }


def paper_by_key(session: Session, key: str) -> Paper:
    """The stored paper with this canonical key, or :class:`UnknownPaperError`."""
    paper: Paper | None = session.execute(
        select(Paper).where(col(Paper.key) == key.strip())
    ).scalar()
    if paper is None:
        raise UnknownPaperError(f"no paper {key.strip()!r} in the store")
    return paper


def rate(
    session: Session, subscriber: Subscriber, paper: Paper, vote: int, *, now: datetime
) -> None:
    """Record ``vote`` (+1 or -1) for the paper, replacing an earlier one; 0 clears it."""
    if vote not in (-1, 0, 1):
        raise ProfileError(f"a rating is +1, -1 or 0 (clear), not {vote!r}")
    if vote == 0:
        session.execute(
            delete(Feedback).where(
                col(Feedback.subscriber_id) == subscriber.id, col(Feedback.paper_id) == paper.id
            )
        )
        return
    # One statement: two clicks on the same link at once cannot both insert.
    statement = dialect_insert(session)(Feedback).values(
        subscriber_id=subscriber.id, paper_id=paper.id, vote=vote, created_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["subscriber_id", "paper_id"],
            set_={"vote": vote, "created_at": now},
        )
    )


def ratings_of(session: Session, subscriber: Subscriber) -> list[Rating]:
    """Every rating of the subscriber, newest first."""
    rows = session.execute(
        select(col(Paper.key), col(Paper.title), col(Feedback.vote), col(Feedback.created_at))
        .join(Paper, col(Paper.id) == col(Feedback.paper_id))
        .where(col(Feedback.subscriber_id) == subscriber.id)
        .order_by(col(Feedback.created_at).desc(), col(Feedback.id).desc())
    ).all()
    return [Rating(key, title, vote, when) for key, title, vote, when in rows]


def rated_papers(session: Session, subscriber_ids: Sequence[int]) -> dict[int, tuple[Rated, ...]]:
    """What the ranker learns from, per subscriber: their most recent :data:`MAX_RATINGS`
    ratings of each kind, newest first, with the papers' text. A few queries whatever the
    number of subscribers; subscribers without ratings are absent."""
    found: dict[int, list[Rated]] = defaultdict(list)
    kept: dict[tuple[int, int], int] = defaultdict(int)
    for member in one_of(session, col(Feedback.subscriber_id), list(subscriber_ids)):
        rows = session.execute(
            select(col(Feedback.subscriber_id), col(Feedback.vote), Paper)
            .join(Paper, col(Paper.id) == col(Feedback.paper_id))
            .where(member)
            .order_by(
                col(Feedback.subscriber_id), col(Feedback.created_at).desc(), col(Feedback.id)
            )
        ).all()
        for subscriber_id, vote, paper in rows:
            if kept[subscriber_id, vote] >= MAX_RATINGS:
                continue
            kept[subscriber_id, vote] += 1
            doc = RankDoc(
                paper.key,
                paper.title,
                paper.abstract,
                tuple(paper.authors),
                tuple(paper.categories),
            )
            found[subscriber_id].append(Rated(doc, vote))
    return {subscriber_id: tuple(rated) for subscriber_id, rated in found.items()}


def parse_ratings(value: Any) -> list[tuple[str, int, datetime | None]]:
    """Ratings as an export carries them (``[{"key", "vote", "rated_at"?}, …]``), checked:
    a list of (paper key, vote, when) or :class:`ProfileError` naming what is wrong."""
    if not isinstance(value, list):
        raise ProfileError("'ratings' must be a list of {key, vote} objects")
    out: list[tuple[str, int, datetime | None]] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise ProfileError("each rating needs a paper 'key'")
        vote = item.get("vote")
        if vote not in (1, -1) or isinstance(vote, bool):
            raise ProfileError(f"rating of {item['key']!r}: 'vote' must be 1 or -1")
        when = item.get("rated_at")
        try:
            stamp = datetime.fromisoformat(when) if isinstance(when, str) else None
        except ValueError:
            raise ProfileError(f"rating of {item['key']!r}: bad 'rated_at' {when!r}") from None
        if stamp is not None and stamp.tzinfo is None:
            raise ProfileError(f"rating of {item['key']!r}: 'rated_at' needs a time zone")
        out.append((item["key"], vote, stamp))
    return out


def replace_ratings(
    session: Session,
    subscriber: Subscriber,
    ratings: Iterable[tuple[str, int, datetime | None]],
    *,
    now: datetime,
) -> list[str]:
    """Make the subscriber's ratings exactly ``ratings`` (an import); returns the keys of
    papers this store does not have, which are left out."""
    assert subscriber.id is not None  # a stored subscriber
    session.execute(delete(Feedback).where(col(Feedback.subscriber_id) == subscriber.id))
    wanted = {key: (vote, when) for key, vote, when in ratings}
    ids: dict[str, int] = {}
    for member in one_of(session, col(Paper.key), list(wanted)):
        rows = session.execute(select(col(Paper.key), col(Paper.id)).where(member))
        ids.update((key, paper_id) for key, paper_id in rows.all())
    for key, (vote, when) in wanted.items():
        if key in ids:
            session.add(
                Feedback(
                    subscriber_id=subscriber.id,
                    paper_id=ids[key],
                    vote=vote,
                    created_at=when or now,
                )
            )
    session.flush()
    return [key for key in wanted if key not in ids]
