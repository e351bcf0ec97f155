"""The subscriber web app: pages, double opt-in, one-click unsubscribe, feeds over HTTP.

``create_app(settings)`` returns the FastAPI application; ``digest serve`` runs it with
uvicorn. Routes live in :mod:`~digest.web.pages`, :mod:`~digest.web.subscribe`,
:mod:`~digest.web.unsubscribe` and :mod:`~digest.web.feeds`; :mod:`~digest.web.security`
holds CSRF, signed links, token checks and headers.
"""

from __future__ import annotations

from digest.web.app import create_app

__all__ = ["create_app"]
