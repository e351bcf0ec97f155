"""Store rows → view objects for the renderers: recorded digests and previews.

Feeds are built in :mod:`~digest.render.feed_views`. The renderers (:mod:`~digest.render.email`,
:mod:`~digest.render.feeds`) are pure functions of the views built here. Functions take a
session and never commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol
from urllib.parse import quote

from sqlalchemy import select
from sqlmodel import Session, col

from digest.digests.due import DueOptions, find_due
from digest.digests.ledger import digest_key
from digest.digests.selection import Selection, select_papers
from digest.ranking.base import Ranker
from digest.render.email import RenderedEmail, cached_renderer
from digest.render.views import DigestView, ItemView
from digest.store import db
from digest.store.models import Digest, DigestItem, Paper, Subscriber
from digest.subscribers.library import get_subscriber, interests_of, spec_of
from digest.subscribers.links import links_for, vote_signer, vote_urls

if TYPE_CHECKING:
    from digest.config.settings import Settings


@dataclass(frozen=True, slots=True)
class ViewOptions:
    """The settings views are built with. ``secret_key`` signs each item's "more like this"
    and "less like this" links; without one, items carry none."""

    base_url: str
    site_name: str = "Paper digest"
    feed_items: int = 50
    secret_key: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> ViewOptions:
        secret = settings.secret_key.get_secret_value()
        return cls(settings.base_url, settings.site_name, settings.feed_items, secret)

    def votes(self, subscriber: Subscriber) -> Callable[[str], tuple[str | None, str | None]]:
        """Paper key -> the subscriber's (more, less) feedback URLs (None, None: no key)."""
        if subscriber.id is None:
            return lambda _key: (None, None)
        return self.votes_for(subscriber.id, subscriber.token)

    def votes_for(
        self, subscriber_id: int, token: str
    ) -> Callable[[str], tuple[str | None, str | None]]:
        """:meth:`votes` by the subscriber's id and token (feed heads, render payloads)."""
        if not self.secret_key:
            return lambda _key: (None, None)
        sign = vote_signer(self.secret_key).signing_for(subscriber_id, token)
        return lambda key: vote_urls(self.base_url, sign(key))

    @property
    def links_fingerprint(self) -> str:
        """Changes when the feedback links would (a new secret key): part of feed ETags."""
        return hashlib.sha256(b"vote links\x00" + self.secret_key.encode()).hexdigest()[:16]


class PaperLike(Protocol):
    """What a view shows of a paper: a stored :class:`Paper` or a render batch's fields."""

    @property
    def key(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def abstract(self) -> str: ...
    @property
    def authors(self) -> Sequence[str]: ...
    @property
    def url(self) -> str | None: ...
    @property
    def arxiv_id(self) -> str | None: ...
    @property
    def doi(self) -> str | None: ...
    @property
    def pdf_url(self) -> str | None: ...
    @property
    def github_repo(self) -> str | None: ...
    @property
    def published_at(self) -> datetime | None: ...
    @property
    def listed_at(self) -> datetime | None: ...
    @property
    def upvotes(self) -> int | None: ...


def paper_url(paper: PaperLike) -> str | None:
    """The paper's landing page: its source's link (the Hugging Face paper page, an entry's
    link), else the arXiv abstract by id, else the DOI; None when no source gave any of them
    (a saved listing page names no link): the email says so rather than guess a search."""
    if paper.url:
        return paper.url
    if paper.arxiv_id:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    if paper.doi:
        return f"https://doi.org/{quote(paper.doi, safe='/:;()._-')}"
    return None


def item_view(
    paper: PaperLike,
    *,
    reason: str,
    matched: Sequence[str],
    score: float,
    delivered_at: datetime | None = None,
    votes: tuple[str | None, str | None] = (None, None),
) -> ItemView:
    return ItemView(
        key=paper.key,
        title=paper.title,
        url=paper_url(paper),
        abstract=paper.abstract,
        authors=tuple(paper.authors),
        published=paper.published_at,
        listed=paper.listed_at,
        upvotes=paper.upvotes,
        code_url=paper.github_repo,
        pdf_url=paper.pdf_url,
        reason=reason,
        matched=tuple(matched),
        score=score,
        delivered_at=delivered_at,
        more_url=votes[0],
        less_url=votes[1],
    )


def _interests(session: Session, subscriber: Subscriber) -> tuple[str, ...]:
    return tuple(spec_of(interests_of(session, subscriber)).keywords)


def digest_view(
    session: Session, digest: Digest, subscriber: Subscriber, *, options: ViewOptions
) -> DigestView:
    """The view of a recorded digest, items in rank order."""
    rows = session.execute(
        select(DigestItem, Paper)
        .join(Paper, col(DigestItem.paper_id) == col(Paper.id))
        .where(col(DigestItem.digest_id) == digest.id)
        .order_by(col(DigestItem.rank))
    ).all()
    votes = options.votes(subscriber)
    items = tuple(
        item_view(
            paper,
            reason=item.reason,
            matched=item.matched,
            score=item.score,
            votes=votes(paper.key),
        )
        for item, paper in rows
    )
    assert subscriber.id is not None
    return DigestView(
        key=digest_key(subscriber.id, digest.period_key),
        subscriber_email=subscriber.email,
        subscriber_name=subscriber.name,
        period_label=digest.period_label,
        generated_at=digest.window_end,
        items=items,
        links=links_for(options.base_url, subscriber.token),
        interests=_interests(session, subscriber),
    )


def selection_view(
    session: Session, selection: Selection, *, now: datetime, options: ViewOptions
) -> DigestView:
    """The view of a digest that has not been recorded (``digest preview``)."""
    subscriber = selection.due.subscriber
    assert subscriber.id is not None
    votes = options.votes_for(subscriber.id, subscriber.token)
    return DigestView(
        key=digest_key(subscriber.id, selection.due.period.key),
        subscriber_email=subscriber.email,
        subscriber_name=subscriber.name,
        period_label=selection.due.period.label,
        generated_at=now,
        items=tuple(
            item_view(
                paper,
                reason=pick.reason(),
                matched=[m.interest for m in pick.matches],
                score=pick.score,
                votes=votes(paper.key),
            )
            for paper, pick in selection.paired()
        ),
        links=links_for(options.base_url, subscriber.token),
        interests=selection.due.interests,
    )


def preview_digest(
    session: Session,
    email: str,
    *,
    now: datetime,
    due: DueOptions,
    views: ViewOptions,
    max_items: int,
    ranker: Ranker,
) -> DigestView:
    """The digest ``email`` would get now, read-only: nothing is recorded or sent."""
    subscriber = get_subscriber(session, email)
    wanted = find_due(session, now=now, options=due, only=subscriber, ignore_existing=True)
    selections = select_papers(session, wanted, now=now, max_items=max_items, ranker=ranker)
    return selection_view(session, selections[0], now=now, options=views)


def render_preview(
    settings: Settings, email: str, *, now: datetime
) -> tuple[DigestView, RenderedEmail]:
    """``digest preview``: the next digest of ``email`` and its email, read-only."""
    from digest.ranking import get_ranker  # noqa: PLC0415 - the ranker's imports are heavy

    with db.reading(settings) as session:  # a preview records nothing
        view = preview_digest(
            session,
            email,
            now=now,
            due=DueOptions.from_settings(settings),
            views=ViewOptions.from_settings(settings),
            max_items=settings.max_items,
            ranker=get_ranker(settings.ranker),
        )
    return view, cached_renderer(settings.templates_dir, settings.site_name).render(view)
