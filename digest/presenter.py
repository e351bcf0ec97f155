"""Store rows → view objects for the renderers (digests, previews, feeds)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote_plus

from sqlalchemy import select
from sqlmodel import Session, col

from digest.models import Digest, DigestItem, Paper, Subscriber
from digest.pipeline import Selection, digest_key
from digest.settings import Settings
from digest.urls import links_for
from digest.views import DigestView, FeedView, ItemView

FEED_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # "updated" of a feed with no items yet


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
    )


def _interests(session: Session, subscriber: Subscriber) -> tuple[str, ...]:
    from digest.subscribers import interests_of, spec_of  # noqa: PLC0415 - avoids a cycle

    return tuple(spec_of(interests_of(session, subscriber)).keywords)


def digest_view(
    session: Session, digest: Digest, subscriber: Subscriber, *, settings: Settings
) -> DigestView:
    """The view of a recorded digest, items in rank order."""
    rows = session.execute(
        select(DigestItem, Paper)
        .join(Paper, col(DigestItem.paper_id) == col(Paper.id))
        .where(col(DigestItem.digest_id) == digest.id)
        .order_by(col(DigestItem.rank))
    ).all()
    items = tuple(
        item_view(paper, reason=item.reason, matched=item.matched, score=item.score)
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
        links=links_for(settings.base_url, subscriber.token),
        interests=_interests(session, subscriber),
    )


def selection_view(
    session: Session, selection: Selection, *, now: datetime, settings: Settings
) -> DigestView:
    """The view of a digest that has not been recorded (``digest preview``)."""
    subscriber = selection.due.subscriber
    assert subscriber.id is not None
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
            )
            for paper, pick in selection.picks
        ),
        links=links_for(settings.base_url, subscriber.token),
        interests=_interests(session, subscriber),
    )


def feed_self_url(settings: Settings, subscriber: Subscriber, fmt: str) -> str:
    """The URL of the subscriber's feed in ``fmt`` (atom, rss or json)."""
    links = links_for(settings.base_url, subscriber.token)
    return {"atom": links.atom_url, "rss": links.rss_url, "json": links.json_url}[fmt]


def feed_view(
    session: Session, subscriber: Subscriber, *, settings: Settings, fmt: str
) -> FeedView:
    """The subscriber's delivered items, newest digest first, at most ``feed_items``."""
    rows = session.execute(
        select(DigestItem, Paper, Digest)
        .join(Paper, col(DigestItem.paper_id) == col(Paper.id))
        .join(Digest, col(DigestItem.digest_id) == col(Digest.id))
        .where(col(DigestItem.subscriber_id) == subscriber.id, col(Digest.status) == "sent")
        .order_by(col(Digest.sent_at).desc(), col(DigestItem.rank))
        .limit(settings.feed_items)
    ).all()
    items = tuple(
        item_view(
            paper,
            reason=item.reason,
            matched=item.matched,
            score=item.score,
            delivered_at=digest.sent_at,
        )
        for item, paper, digest in rows
    )
    links = links_for(settings.base_url, subscriber.token)
    self_url = feed_self_url(settings, subscriber, fmt)
    updated = max((i.delivered_at for i in items if i.delivered_at), default=FEED_EPOCH)
    who = subscriber.name or subscriber.email.split("@", 1)[0]
    return FeedView(
        feed_id=f"{links.site_url}feeds/{subscriber.id}",
        title=f"{settings.site_name} for {who}",
        subtitle="New papers picked for your interests: "
        + ", ".join(_interests(session, subscriber)),
        self_url=self_url,
        site_url=links.site_url,
        author_name=settings.site_name,
        items=items,
        updated=updated,
    )
