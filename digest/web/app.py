"""The subscriber web app: ``create_app(settings)`` builds the FastAPI application.

Run it with uvicorn (``digest serve``): ``access_log=False`` (the app writes its own access
log with tokens redacted), ``proxy_headers=True`` and ``forwarded_allow_ips`` from
``DIGEST_WEB_FORWARDED_ALLOW_IPS``: empty by default, so a client's own X-Forwarded-For is
ignored; set to the reverse proxy, the rate limits see the address the proxy reports.

Errors are translated here: an unknown page or token is a 404 page, a stale form a 403, a
busy client a 429, an expected core failure (:class:`~digest.errors.DigestError`) a 400 —
or a 503 when mail could not be sent. No route shows a traceback.

A GET or HEAD of a route's path with a trailing slash or doubled slashes
(``/feeds/<token>.atom/``, ``//manage/<token>``) is redirected (308) to the route's own
URL under ``DIGEST_BASE_URL``, never to a host taken from the request (a ``Host:
evil.example`` header must not send a token there); Starlette's own slash redirect, which
builds its URL from the Host header, is off.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from digest.config.settings import Settings, load_settings
from digest.errors import DeliveryError, DigestError, RenderError
from digest.store import db
from digest.web import feedback, feeds, pages, subscribe, unsubscribe
from digest.web.access_log import AccessLog, install_uvicorn_redaction
from digest.web.deps import WebContext, page_environment
from digest.web.ratelimit import RateLimiter
from digest.web.security import ConfirmSigner, Csrf, SecurityHeaders

TITLES = {
    400: "Bad request",
    403: "Form expired",
    404: "Not found",
    405: "Method not allowed",
    410: "Gone",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Try again later",
}
NOT_FOUND = "There is nothing here. If you followed a link from an email, it may be outdated."


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None
) -> FastAPI:
    """The web app for ``settings`` (default: from the environment); ``clock`` for tests."""
    settings = settings or load_settings()
    secret = settings.secret_key.get_secret_value()
    web = WebContext(
        settings=settings,
        engine=db.get_engine(settings),  # migrates on first use: fail at start, not per request
        clock=clock or _utcnow,
        csrf=Csrf(secret, secure_cookie=settings.base_url.startswith("https://")),
        signer=ConfirmSigner(secret, max_age=settings.confirm_max_age),
        ip_limiter=RateLimiter(limit=settings.subscribe_ip_limit, window=settings.subscribe_window),
        address_limiter=RateLimiter(
            limit=settings.subscribe_address_limit, window=settings.subscribe_window
        ),
        pages=page_environment(settings),
    )
    app = FastAPI(
        title=settings.site_name,
        docs_url=None,  # no API docs: they need scripts from a CDN, and there is no public API
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,  # it builds Location from the Host header: see canonical_url
    )
    app.state.web = web
    app.router.routes.append(feeds.route)  # first: the hottest route (see web/feeds.py)
    for module in (pages, subscribe, unsubscribe, feedback):
        app.include_router(module.router)
    _install_error_pages(app, web)
    # Outermost last: the access log sees the final status, headers cover error pages too.
    app.add_middleware(SecurityHeaders, hsts=settings.base_url.startswith("https://"))
    app.add_middleware(AccessLog)
    install_uvicorn_redaction()
    return app


_SLASHES = re.compile(r"//+")


def canonical_url(request: Request, web: WebContext) -> str | None:
    """For a GET/HEAD whose path is a route's path with a trailing or doubled slash, that
    route's URL under the base URL (with the query); else None."""
    if request.method not in ("GET", "HEAD"):
        return None
    root = request.scope.get("root_path", "")
    path = request.scope["path"]
    path = path[len(root) :] if root and path.startswith(root) else path
    canonical = _SLASHES.sub("/", path).rstrip("/") or "/"
    if canonical == path:
        return None
    scope = {**request.scope, "path": canonical, "root_path": ""}
    if all(route.matches(scope)[0] == Match.NONE for route in request.app.router.routes):
        return None
    query = request.scope.get("query_string", b"").decode("latin-1")
    return web.url(canonical) + (f"?{query}" if query else "")


def _install_error_pages(app: FastAPI, web: WebContext) -> None:
    def page(
        request: Request, status: int, message: str, headers: dict[str, str] | None = None
    ) -> HTMLResponse:
        title = TITLES.get(status, "Error")
        response = web.render(
            request, "error.html", {"title": title, "message": message}, status=status
        )
        response.headers.update(headers or {})
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and (location := canonical_url(request, web)):
            return RedirectResponse(location, status_code=308)
        if exc.status_code == 404:
            message = NOT_FOUND
        elif (
            exc.detail and exc.detail != TITLES.get(exc.status_code) and isinstance(exc.detail, str)
        ):
            message = exc.detail
        else:
            message = TITLES.get(exc.status_code, "The request could not be handled.")
        return page(request, exc.status_code, message, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        return page(request, 400, "The request was not understood.")

    @app.exception_handler(DigestError)
    async def digest_error(request: Request, exc: DigestError) -> HTMLResponse:
        if isinstance(exc, DeliveryError):
            return page(
                request, 503, "We could not send the email just now. Please try again later."
            )
        if isinstance(exc, RenderError):
            return page(request, 500, "This page could not be rendered.")
        return page(request, 400, " ".join(str(exc).split()))
