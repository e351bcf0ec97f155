""" "More like this" / "less like this": the signed links of emails, feeds and previews.

A link names one subscriber and one paper, signed (:class:`~digest.subscribers.links.
VoteSigner`). ``GET`` shows the paper and one button and changes nothing: mail scanners and
feed readers fetch every URL they see, and a fetch must never vote (RFC 8058 one-click is
for unsubscribing only). The button posts, with a CSRF field, and records the rating. A
value whose signature fails, whose subscriber is gone, pending or has a new token, or whose
paper is not in the store is a 404 alike; a direction other than ``up`` or ``down`` a 400.

The manage page lists the rated papers; each has an undo button posting here.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlmodel import col

from digest.errors import UnknownPaperError
from digest.render.assemble import paper_url
from digest.store.models import Feedback, Paper, Subscriber
from digest.subscribers.feedback import VOTES, paper_by_key, rate
from digest.subscribers.links import VoteSigner, token_fingerprint
from digest.web.deps import DbSession, Web, WebContext
from digest.web.security import tokens_equal
from digest.web.service import subscriber_for_token

log = logging.getLogger(__name__)
router = APIRouter()
Direction = Literal["up", "down"]


def _claimed(web: WebContext, session: DbSession, signed: str) -> tuple[Subscriber, Paper]:
    """The subscriber and paper a genuine link names, else 404."""
    claim = VoteSigner(web.settings.secret_key.get_secret_value()).read(signed)
    if claim is None:
        raise HTTPException(404)
    subscriber = session.get(Subscriber, claim.subscriber_id)
    if (
        subscriber is None
        or subscriber.status == "pending"
        or not tokens_equal(claim.fingerprint, token_fingerprint(subscriber.token))
    ):
        raise HTTPException(404)
    try:
        return subscriber, paper_by_key(session, claim.paper_key)
    except UnknownPaperError:
        raise HTTPException(404) from None


def _current(session: DbSession, subscriber: Subscriber, paper: Paper) -> int:
    vote = session.execute(
        select(col(Feedback.vote)).where(
            col(Feedback.subscriber_id) == subscriber.id, col(Feedback.paper_id) == paper.id
        )
    ).scalar()
    return int(vote or 0)


@router.get("/feedback/{signed}/{direction}", name="feedback_page")
def feedback_page(
    signed: str,
    direction: Direction,
    request: Request,
    web: Web,
    session: DbSession,
    done: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """The paper and one button (changes nothing)."""
    subscriber, paper = _claimed(web, session, signed)
    context = {
        "action": f"/feedback/{signed}/{direction}",
        "direction": direction,
        "title": paper.title,
        "url": paper_url(paper),
        "current": _current(session, subscriber, paper),
        "done": done is not None,
        "token": subscriber.token,
    }
    return web.render(request, "feedback.html", context)


@router.post("/feedback/{signed}/{direction}", name="feedback_vote")
def feedback_vote(
    signed: str,
    direction: Direction,
    request: Request,
    web: Web,
    session: DbSession,
    csrf_token: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Record the rating, then show the page again with a confirmation (303)."""
    subscriber, paper = _claimed(web, session, signed)
    now = web.clock()
    web.csrf.verify(request, csrf_token, f"/feedback/{signed}/{direction}", now)
    rate(session, subscriber, paper, VOTES[direction], now=now)
    log.info("feedback: subscriber %d rated %s %s", subscriber.id, paper.key, direction)
    return RedirectResponse(f"{web.prefix}/feedback/{signed}/{direction}?done", status_code=303)


@router.post("/manage/{token}/ratings", name="clear_rating")
def clear_rating(
    token: str,
    request: Request,
    web: Web,
    session: DbSession,
    key: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Undo one rating from the manage page."""
    subscriber = subscriber_for_token(session, token)
    if subscriber is None:
        raise HTTPException(404)
    now = web.clock()
    web.csrf.verify(request, csrf_token, f"/manage/{token}/ratings", now)
    try:
        rate(session, subscriber, paper_by_key(session, key), 0, now=now)
    except UnknownPaperError:
        raise HTTPException(404) from None
    return RedirectResponse(f"{web.prefix}/manage/{token}?done=unrated#ratings", status_code=303)
