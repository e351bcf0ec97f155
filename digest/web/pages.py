"""Pages: the landing page, the manage page (edit, pause, resume, preview), small files.

Token pages answer 404 for unknown and pending tokens alike. Every post redirects (303) back
to the manage page with a notice, so reloading never re-submits a form; a form with errors
is shown again (400) with the message and nothing stored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy import text

from digest.config.calendar import WEEKDAYS
from digest.errors import DigestError
from digest.ranking import get_ranker
from digest.render.assemble import preview_digest
from digest.render.display import date_label
from digest.store.models import Subscriber
from digest.subscribers.feedback import ratings_of
from digest.subscribers.fields import FREQUENCIES, WEB_FIELDS
from digest.subscribers.library import interests_of
from digest.subscribers.links import links_for
from digest.web.deps import DbSession, Web, WebContext
from digest.web.forms import (
    PostedForm,
    form_defaults,
    form_values,
    parse_preferences,
    posted,
    profile_texts,
)
from digest.web.security import PREVIEW_CSP
from digest.web.service import (
    recent_digests,
    set_own_status,
    subscriber_for_token,
    update_preferences,
)

router = APIRouter()

FormText = Annotated[str, Form()]
NOTICES = {
    "saved": "Your preferences are saved.",
    "paused": "Your digests are paused. Your feeds keep working.",
    "resumed": "Your digests are on again.",
    "unrated": "That rating is undone.",
}
_BODY_TAG = re.compile(r"<body[^>]*>", re.IGNORECASE)
ROBOTS = (
    "User-agent: *\nDisallow: /manage/\nDisallow: /unsubscribe/\nDisallow: /confirm/\n"
    "Disallow: /feedback/\n"
)


def _subscriber(session: DbSession, token: str) -> Subscriber:
    subscriber = subscriber_for_token(session, token)
    if subscriber is None:
        raise HTTPException(404)
    return subscriber


def choices() -> dict[str, Any]:
    """Select options shared by the landing and manage forms."""
    return {"weekdays": WEEKDAYS, "hours": range(24), "frequencies": FREQUENCIES}


@router.get("/", name="landing")
def landing(request: Request, web: Web) -> HTMLResponse:
    form = form_defaults(web.settings)
    return web.render(request, "landing.html", {"form": form, "error": None, **choices()})


def _manage(
    request: Request,
    web: WebContext,
    session: DbSession,
    subscriber: Subscriber,
    *,
    form: dict[str, str] | None = None,
    error: str | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    interests = interests_of(session, subscriber)
    required = profile_texts(interests)[2]
    links = links_for(web.settings.base_url, subscriber.token)
    digests = [
        {
            "label": digest.period_label,
            "date": date_label(digest.sent_at or digest.created_at),
            "count": digest.item_count,
            "subject": digest.subject or "",
        }
        for digest in recent_digests(session, subscriber)
    ]
    values = form or form_values(subscriber, interests, max_items=web.settings.max_items)
    context = {
        "token": subscriber.token,
        "email": subscriber.email,
        "status": subscriber.status,
        "form": values,
        "required": required,
        "error": error,
        "notice": NOTICES.get(notice or ""),
        "feeds": {"atom": links.atom_url, "rss": links.rss_url, "json": links.json_url},
        "digests": digests,
        "ratings": ratings_of(session, subscriber),
        **choices(),
    }
    return web.render(request, "manage.html", context, status=400 if error else 200)


@router.get("/manage/{token}", name="manage")
def manage(
    token: str,
    request: Request,
    web: Web,
    session: DbSession,
    done: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    return _manage(request, web, session, _subscriber(session, token), notice=done)


@router.post("/manage/{token}", name="save", response_model=None)
def save(
    token: str,
    request: Request,
    web: Web,
    session: DbSession,
    posted_form: PostedForm,
) -> Response:
    subscriber = _subscriber(session, token)
    now = web.clock()
    web.csrf.verify(request, posted_form.get("csrf_token", ""), f"/manage/{token}", now)
    form = posted(posted_form, WEB_FIELDS, {})
    required = profile_texts(interests_of(session, subscriber))[2]
    try:
        preferences = parse_preferences(form, required=required)
    except DigestError as exc:
        return _manage(request, web, session, subscriber, form=form, error=str(exc))
    update_preferences(session, subscriber, preferences, now=now)
    return RedirectResponse(f"{web.prefix}/manage/{token}?done=saved", status_code=303)


def _set_status(
    token: str,
    request: Request,
    web: WebContext,
    session: DbSession,
    *,
    action: str,
    csrf_token: str,
) -> RedirectResponse:
    subscriber = _subscriber(session, token)
    now = web.clock()
    web.csrf.verify(request, csrf_token, f"/manage/{token}/{action}", now)
    set_own_status(session, subscriber, "paused" if action == "pause" else "active", now=now)
    done = "paused" if action == "pause" else "resumed"
    return RedirectResponse(f"{web.prefix}/manage/{token}?done={done}", status_code=303)


@router.post("/manage/{token}/pause", name="pause")
def pause(
    token: str, request: Request, web: Web, session: DbSession, csrf_token: FormText = ""
) -> RedirectResponse:
    """Stop sending digests (profile and feeds kept)."""
    return _set_status(token, request, web, session, action="pause", csrf_token=csrf_token)


@router.post("/manage/{token}/resume", name="resume")
def resume(
    token: str, request: Request, web: Web, session: DbSession, csrf_token: FormText = ""
) -> RedirectResponse:
    """Send digests again; also resubscribes after an unsubscribe."""
    return _set_status(token, request, web, session, action="resume", csrf_token=csrf_token)


@router.get("/manage/{token}/preview", name="preview")
def preview(token: str, request: Request, web: Web, session: DbSession) -> HTMLResponse:
    """The next digest's email HTML with a banner; records and sends nothing."""
    subscriber = _subscriber(session, token)
    now = web.clock()
    view = preview_digest(
        session,
        subscriber.email,
        now=now,
        due=web.due,
        views=web.views,
        max_items=web.settings.max_items,
        ranker=get_ranker(web.settings.ranker),
    )
    rendered = web.renderer.render(view)
    banner = web.pages.get_template("web/preview_banner.html").render(
        prefix=web.prefix, token=token, count=len(view.items), period=view.period_label
    )
    match = _BODY_TAG.search(rendered.html)
    at = match.end() if match else 0
    html = rendered.html[:at] + banner + rendered.html[at:]
    return HTMLResponse(html, headers={"Content-Security-Policy": PREVIEW_CSP})


@router.api_route("/static/site.css", methods=["GET", "HEAD"], name="stylesheet")
def stylesheet(web: Web) -> Response:
    """The one stylesheet (CSP allows no inline style on pages)."""
    loader = web.pages.loader
    assert loader is not None  # page_environment always sets one
    source, _, _ = loader.get_source(web.pages, "web/site.css")
    return Response(
        source,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/robots.txt", name="robots")
def robots() -> PlainTextResponse:
    return PlainTextResponse(ROBOTS, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/healthz", name="health")
def health(session: DbSession) -> PlainTextResponse:
    """Liveness and database reachability, for container health checks."""
    session.execute(text("select 1"))
    return PlainTextResponse("ok\n")
