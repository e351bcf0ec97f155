"""Signup with double opt-in: ``POST /subscribe`` and ``GET /confirm/{signed}``.

The answer to a valid form is the same page whatever the address: new, pending,
unsubscribed (a confirmation link is mailed), already active or paused (their manage link
is mailed instead, so nothing on the page tells who is subscribed), or over the
per-address limit (nothing is mailed). Only a client IP over its limit sees a 429.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from digest.delivery import make_transport
from digest.delivery.confirmation import already_subscribed_message, confirmation_message
from digest.errors import DigestError
from digest.subscribers.fields import SIGNUP_FIELDS
from digest.subscribers.links import links_for
from digest.web.deps import DbSession, Web, client_ip
from digest.web.forms import PostedForm, form_defaults, parse_signup, posted
from digest.web.pages import choices
from digest.web.service import confirm_subscription, request_subscription

log = logging.getLogger(__name__)
router = APIRouter()

FormText = Annotated[str, Form()]


@router.post("/subscribe", name="subscribe")
def subscribe(
    request: Request,
    web: Web,
    session: DbSession,
    form: PostedForm,
) -> HTMLResponse:
    """Create or refresh a pending subscriber and mail the confirmation link."""
    if not web.ip_limiter.hit(client_ip(request)):
        raise HTTPException(
            429,
            detail="Too many signups from your network. Please try again later.",
            headers={"Retry-After": str(web.settings.subscribe_window)},
        )
    now = web.clock()
    web.csrf.verify(request, form.get("csrf_token", ""), "/subscribe", now)
    values = posted(form, ("email", *SIGNUP_FIELDS), form_defaults(web.settings))
    try:
        signup = parse_signup(values)
    except DigestError as exc:  # about the form itself, never about the address's status
        return web.render(
            request,
            "landing.html",
            {"form": values, "error": str(exc), **choices()},
            status=400,
        )
    if not web.address_limiter.hit(signup.email):
        log.info("subscribe: address over its limit, nothing sent")
        return web.render(request, "subscribe_done.html")
    outcome, subscriber = request_subscription(session, signup, settings=web.settings, now=now)
    assert subscriber.id is not None
    if outcome == "confirm":
        signed = web.signer.sign(subscriber.id, subscriber.token, now)
        message = confirmation_message(
            to=subscriber.email,
            confirm_url=web.url(f"/confirm/{signed}"),
            settings=web.settings,
            sent_at=now,
        )
    else:
        message = already_subscribed_message(
            to=subscriber.email,
            manage_url=links_for(web.settings.base_url, subscriber.token).manage_url,
            settings=web.settings,
            sent_at=now,
        )
    # Sent before the commit: if sending fails (DeliveryError → 503) nothing is stored.
    with make_transport(web.settings) as transport:
        transport.send(
            message, envelope_from=web.settings.envelope_from, recipient=subscriber.email
        )
    log.info("subscribe: %s mail sent to subscriber %d", outcome, subscriber.id)
    return web.render(request, "subscribe_done.html")


@router.get("/confirm/{signed}", name="confirm")
def confirm(signed: str, request: Request, web: Web, session: DbSession) -> HTMLResponse:
    """Activate the subscriber a valid, unexpired link names (idempotent)."""
    now = web.clock()
    claim = web.signer.read(signed, now)
    subscriber = confirm_subscription(session, claim, now=now) if claim else None
    if subscriber is None:
        return web.render(request, "confirm_invalid.html", status=400)
    log.info("confirm: subscriber %d is %s", subscriber.id, subscriber.status)
    return web.render(request, "confirm_done.html", {"token": subscriber.token})
