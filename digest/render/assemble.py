"""Store rows → view objects for the renderers: recorded digests, previews, feeds.

The renderers (:mod:`~digest.render.email`, :mod:`~digest.render.feeds`) are pure functions of
the views built here. Functions take a session and never commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

from sqlalchemy import select
from sqlmodel import Session, col

from digest.digests.due import DueOptions, find_due
from digest.digests.ledger import digest_key
from digest.digests.selection import Selection, select_papers
from digest.errors import DigestError
from digest.ranking.base import Ranker
from digest.render.email import RenderedEmail, cached_renderer
from digest.render.feeds import FEED_FORMATS
from digest.render.views import DigestView, FeedView, ItemView
from digest.store import db
from digest.store.models import Digest, DigestItem, Paper, Subscriber
from digest.subscribers.library import get_subscriber, interests_of, spec_of
from digest.subscribers.links import VoteSigner, links_for, vote_urls

if TYPE_CHECKING:
    from digest.config.settings import Settings

FEED_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # "updated" of a feed with no items yet


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
        if not self.secret_key or subscriber.id is None:
            return lambda _key: (None, None)
        signer = VoteSigner(self.secret_key)
        ident, token = subscriber.id, subscriber.token
        return lambda key: vote_urls(self.base_url, signer.sign(ident, token, key))


def paper_url(paper: Paper) -> str:
    """The paper's landing page; a title search when no source gave a link."""
    if paper.url:
        return paper.url
    if paper.arxiv_id:
        return f"https://arxiv.org/abs/{paper.arxiv_id}"
    if paper.doi:
        return f"https://doi.org/{paper.doi}"
    return f"https://arxiv.org/search/?searchtype=title&query={quote_plus(paper.title)}"


def item_view(
    paper: Paper,
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
    votes = options.votes(subscriber)
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
            for paper, pick in selection.picks
        ),
        links=links_for(options.base_url, subscriber.token),
        interests=_interests(session, subscriber),
    )


def feed_self_url(options: ViewOptions, subscriber: Subscriber, fmt: str) -> str:
    """The URL of the subscriber's feed in ``fmt`` (atom, rss or json)."""
    links = links_for(options.base_url, subscriber.token)
    return {"atom": links.atom_url, "rss": links.rss_url, "json": links.json_url}[fmt]


def feed_view(
    session: Session, subscriber: Subscriber, *, options: ViewOptions, fmt: str
) -> FeedView:
    """The subscriber's delivered items, newest digest first, at most ``feed_items``."""
    rows = session.execute(
        select(DigestItem, Paper, Digest)
        .join(Paper, col(DigestItem.paper_id) == col(Paper.id))
        .join(Digest, col(DigestItem.digest_id) == col(Digest.id))
        .where(col(DigestItem.subscriber_id) == subscriber.id, col(Digest.status) == "sent")
        .order_by(col(Digest.sent_at).desc(), col(DigestItem.rank))
        .limit(options.feed_items)
    ).all()
    votes = options.votes(subscriber)
    items = tuple(
        item_view(
            paper,
            reason=item.reason,
            matched=item.matched,
            score=item.score,
            delivered_at=digest.sent_at,
            votes=votes(paper.key),
        )
        for item, paper, digest in rows
    )
    links = links_for(options.base_url, subscriber.token)
    self_url = feed_self_url(options, subscriber, fmt)
    updated = max((i.delivered_at for i in items if i.delivered_at), default=FEED_EPOCH)
    who = subscriber.name or subscriber.email.split("@", 1)[0]
    return FeedView(
        feed_id=f"{links.site_url}feeds/{subscriber.id}",
        title=f"{options.site_name} for {who}",
        subtitle="New papers picked for your interests: "
        + ", ".join(_interests(session, subscriber)),
        self_url=self_url,
        site_url=links.site_url,
        author_name=options.site_name,
        items=items,
        updated=updated,
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


def public_feed_view(session: Session, *, options: ViewOptions, fmt: str) -> FeedView:
    """Every paper the service has seen, newest first: the public ``/feeds/all.*`` feed."""
    papers = session.execute(
        select(Paper)
        .order_by(col(Paper.first_seen_at).desc(), col(Paper.id).desc())
        .limit(options.feed_items)
    ).scalars()
    items = tuple(
        item_view(paper, reason="", matched=(), score=0.0, delivered_at=paper.first_seen_at)
        for paper in papers
    )
    site = f"{options.base_url}/"
    return FeedView(
        feed_id=f"{site}feeds/all",
        title=f"{options.site_name}: new papers",
        subtitle="Every new paper, newest first, before any personal ranking.",
        self_url=f"{options.base_url}/feeds/all.{fmt}",
        site_url=site,
        author_name=options.site_name,
        items=items,
        updated=max((i.delivered_at for i in items if i.delivered_at), default=FEED_EPOCH),
    )


def render_preview(
    settings: Settings, email: str, *, now: datetime
) -> tuple[DigestView, RenderedEmail]:
    """``digest preview``: the next digest of ``email`` and its email, read-only."""
    from digest.ranking import get_ranker  # noqa: PLC0415 - the ranker's imports are heavy

    engine = db.get_engine(settings)
    with Session(engine) as session:
        view = preview_digest(
            session,
            email,
            now=now,
            due=DueOptions.from_settings(settings),
            views=ViewOptions.from_settings(settings),
            max_items=settings.max_items,
            ranker=get_ranker(settings.ranker),
        )
        session.rollback()  # a preview records nothing
    return view, cached_renderer(settings.templates_dir, settings.site_name).render(view)


def subscriber_feed(settings: Settings, email: str, *, fmt: str) -> bytes:
    """``digest feed``: a subscriber's personal feed in ``fmt`` (atom, rss or json)."""
    if fmt not in FEED_FORMATS:
        raise DigestError(f"unknown feed format {fmt!r}: use atom, rss or json")
    options = ViewOptions.from_settings(settings)
    with db.transaction(settings) as session:
        subscriber = get_subscriber(session, email)
        return FEED_FORMATS[fmt](feed_view(session, subscriber, options=options, fmt=fmt))
