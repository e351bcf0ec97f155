"""What every route shares: the app context, the request's DB session, page rendering.

``DbSession`` is the one dependency that owns a request's session: it commits when the route
returns and rolls back when it raises, before the response is sent (``scope="function"``),
so a failed commit is a 500, never a success page over lost data.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, StrictUndefined
from sqlalchemy.engine import Engine
from sqlmodel import Session

from digest.config.settings import Settings
from digest.digests.due import DueOptions
from digest.render.assemble import ViewOptions
from digest.render.email import EmailRenderer, template_loader
from digest.store import db
from digest.web.feed_cache import FeedService
from digest.web.ratelimit import RateLimiter
from digest.web.security import ConfirmSigner, Csrf


def page_environment(settings: Settings) -> Environment:
    """Jinja for ``templates/web`` (overrides first), autoescaped whatever the extension."""
    return Environment(
        loader=template_loader(settings.templates_dir),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass
class WebContext:
    """Built once by ``create_app``; reachable as ``request.app.state.web``."""

    settings: Settings
    engine: Engine
    clock: Callable[[], datetime]
    csrf: Csrf
    signer: ConfirmSigner
    ip_limiter: RateLimiter
    address_limiter: RateLimiter
    pages: Environment
    _renderer: EmailRenderer | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @functools.cached_property
    def views(self) -> ViewOptions:
        return ViewOptions.from_settings(self.settings)

    @functools.cached_property
    def feeds(self) -> FeedService:
        """Feed heads and rendered feeds (cached per process)."""
        return FeedService(self.engine, self.views)

    @functools.cached_property
    def due(self) -> DueOptions:
        return DueOptions.from_settings(self.settings)

    @property
    def prefix(self) -> str:
        """The base URL's path ("" at a host's root): page links start with it."""
        return urlsplit(self.settings.base_url).path.rstrip("/")

    def url(self, path: str) -> str:
        """An absolute URL under ``DIGEST_BASE_URL`` (for mails and copyable links)."""
        return f"{self.settings.base_url}{path}"

    @property
    def renderer(self) -> EmailRenderer:
        """The email renderer for previews; the MJML compile happens on first use."""
        with self._lock:
            if self._renderer is None:
                self._renderer = EmailRenderer(
                    templates_dir=self.settings.templates_dir, site_name=self.settings.site_name
                )
            return self._renderer

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        *,
        status: int = 200,
    ) -> HTMLResponse:
        """Render ``web/<name>`` with the common context; sets the CSRF cookie if needed."""
        cookie, new_cookie = self.csrf.cookie_of(request)
        now = self.clock()
        values = {
            "site_name": self.settings.site_name,
            "prefix": self.prefix,
            "csrf": lambda action: self.csrf.token(cookie, action, now),
            **(context or {}),
        }
        html = self.pages.get_template(f"web/{name}").render(values)
        response = HTMLResponse(html, status_code=status)
        if new_cookie:
            self.csrf.set_cookie(response, cookie)
        return response


def get_web(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


Web = Annotated[WebContext, Depends(get_web)]


def get_session(web: Web) -> Iterator[Session]:
    with db.transaction(web.engine) as session:
        yield session


DbSession = Annotated[Session, Depends(get_session, scope="function")]


def client_ip(request: Request) -> str:
    """The client address (uvicorn puts the X-Forwarded-For one here for trusted proxies)."""
    return request.client.host if request.client else "unknown"
