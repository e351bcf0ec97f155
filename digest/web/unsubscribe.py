"""Unsubscribe: ``GET`` asks, ``POST`` acts; RFC 8058 one-click is a POST too.

Link scanners fetch every URL in a mail, so the GET only shows a button. The one-click POST
(body ``List-Unsubscribe=One-Click``) comes from the mail provider: no cookies, so no CSRF
check (RFC 8058 §3.1; the token in the URL is the authorization), answered 200 with a short
text and no redirect (§3.2). The page's own form carries a CSRF field.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from digest.store.models import Subscriber
from digest.web.deps import DbSession, Web
from digest.web.service import set_own_status, subscriber_for_token

log = logging.getLogger(__name__)
router = APIRouter()

ONE_CLICK = "One-Click"


def _subscriber(session: DbSession, token: str) -> Subscriber:
    subscriber = subscriber_for_token(session, token)
    if subscriber is None:
        raise HTTPException(404)
    return subscriber


@router.get("/unsubscribe/{token}", name="unsubscribe_page")
def unsubscribe_page(token: str, request: Request, web: Web, session: DbSession) -> HTMLResponse:
    """The confirm button (changes nothing)."""
    subscriber = _subscriber(session, token)
    if subscriber.status == "unsubscribed":
        return web.render(request, "unsubscribed.html", {"token": token, "already": True})
    return web.render(request, "unsubscribe.html", {"token": token})


@router.post("/unsubscribe/{token}", name="unsubscribe")
def unsubscribe(
    token: str,
    request: Request,
    web: Web,
    session: DbSession,
    list_unsubscribe: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Unsubscribe now: one-click (plain 200) or the page's form (the unsubscribed page)."""
    subscriber = _subscriber(session, token)
    now = web.clock()
    one_click = list_unsubscribe == ONE_CLICK
    if not one_click:
        web.csrf.verify(request, csrf_token, f"/unsubscribe/{token}", now)
    set_own_status(session, subscriber, "unsubscribed", now=now)
    log.info("unsubscribe: subscriber %d (%s)", subscriber.id, "one-click" if one_click else "form")
    if one_click:
        return PlainTextResponse("You are unsubscribed.\n")
    return web.render(request, "unsubscribed.html", {"token": token, "already": False})
