"""The subscriber web app: ``create_app(settings)`` builds the FastAPI application.

Run it with uvicorn (``digest serve``): ``access_log=False`` (the app writes its own access
log with tokens redacted), ``proxy_headers=True`` and ``forwarded_allow_ips`` set to the
reverse proxy, so rate limits see the real client address.

Errors are translated here: an unknown page or token is a 404 page, a stale form a 403, a
busy client a 429, an expected core failure (:class:`~digest.errors.DigestError`) a 400 —
or a 503 when mail could not be sent. No route shows a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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
        title=settings.site_name, docs_url=None, redoc_url=None, openapi_url=None
    )  # no API docs: they need scripts from a CDN, and there is no public API
    app.state.web = web
    for module in (pages, subscribe, unsubscribe, feeds, feedback):
        app.include_router(module.router)
    _install_error_pages(app, web)
    # Outermost last: the access log sees the final status, headers cover error pages too.
    app.add_middleware(SecurityHeaders, hsts=settings.base_url.startswith("https://"))
    app.add_middleware(AccessLog)
    install_uvicorn_redaction()
    return app


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
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
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
