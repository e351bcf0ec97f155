"""The views of feed heads (:mod:`digest.render.feed_state`), checked against the store.

:func:`build_view` turns a head into the :class:`FeedView` to render: it reads the window's
rows, items and papers, and takes everything else from the head. Statements outside one
snapshot may see different states, so :func:`settled_view` reads the head again afterwards:
the same head means the rows the build read are the ones the head (and its ETag) names, since
the sent digests only grow and ``updated_at`` only moves on; a changed head is built again.
Functions take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from sqlalchemy import select
from sqlmodel import Session, col

from digest.errors import DigestError
from digest.render.assemble import ViewOptions, item_view
from digest.render.feed_state import FeedHead, PublicHead, query, to_utc
from digest.render.views import FeedView
from digest.store.models import DigestItem, Paper

BUILD_ATTEMPTS = 3


class StaleFeedError(DigestError):
    """The store kept changing while a feed was being built."""


def build_view(session: Session, head: FeedHead, *, options: ViewOptions, fmt: str) -> FeedView:
    """The feed of ``head``: its window's items from the store, the rest from the head."""
    connection = session.connection()
    window = query(connection, "window", head.subscriber_id, options.feed_items)
    paper_ids = [paper_id for _, _, paper_id in window]
    found = {
        item.paper_id: (item, paper)
        for item, paper in session.execute(
            select(DigestItem, Paper)
            .join(Paper, col(DigestItem.paper_id) == col(Paper.id))
            .where(
                col(DigestItem.subscriber_id) == head.subscriber_id,
                col(DigestItem.paper_id).in_(paper_ids),
            )
        ).all()
    }
    if len(found) != len(paper_ids):
        raise StaleFeedError("a feed item disappeared while the feed was built")
    votes = options.votes_for(head.subscriber_id, head.token)
    items = []
    for _, sent_at, paper_id in window:
        item, paper = found[paper_id]
        items.append(
            item_view(
                paper,
                reason=item.reason,
                matched=item.matched,
                score=item.score,
                delivered_at=to_utc(connection, sent_at),
                votes=votes(paper.key),
            )
        )
    return replace(head.header(options, fmt), items=tuple(items))


def build_public_view(
    session: Session, head: PublicHead, *, options: ViewOptions, fmt: str
) -> FeedView:
    """The public feed of ``head``."""
    connection = session.connection()
    window = query(connection, "public_window", options.feed_items)
    statement = select(Paper).where(col(Paper.id).in_([paper_id for paper_id, _ in window]))
    papers = {paper.id: paper for paper in session.execute(statement).scalars()}
    if len(papers) != len(window):
        raise StaleFeedError("a paper disappeared while the public feed was built")
    items = tuple(
        item_view(
            papers[paper_id],
            reason="",
            matched=(),
            score=0.0,
            delivered_at=to_utc(connection, first_seen),
        )
        for paper_id, first_seen in window
    )
    return replace(head.header(options, fmt), items=items)


H = TypeVar("H", FeedHead, PublicHead)


def settled_view(
    session: Session,
    head: H,
    *,
    read: Callable[[], H | None],
    build: Callable[[Session, H], FeedView],
) -> tuple[H, FeedView] | None:
    """Build the view of ``head`` and make sure the store still says ``head`` afterwards.

    Statements outside one snapshot may see different states; the same head before and
    after the build means the build read what the head names. Retried a few times when a run
    or an import changes the feed meanwhile; None when the subscriber is gone."""
    for _ in range(BUILD_ATTEMPTS):
        try:
            view: FeedView | None = build(session, head)
        except StaleFeedError:
            view = None
        again = read()
        if again is None:
            return None
        if view is not None and again.revision == head.revision:
            return head, view
        head = again
    raise StaleFeedError("the feed kept changing while it was built; try again")
