"""Helpers for the web tests: a synchronous httpx client over the ASGI app, seeded data.

``web_client`` drives the real app in-process: httpx's ``ASGITransport`` runs it on an
event loop in a portal thread (the same arrangement Starlette's TestClient uses), so tests
stay synchronous and keep real cookies, redirects and headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import col

from digest.config.settings import Settings
from digest.delivery import OutboxTransport
from digest.runner import run_digests
from digest.store import db
from digest.store.models import Subscriber
from digest.store.papers import upsert_records
from digest.store.records import PaperRecord
from digest.subscribers.library import ProfileSpec, SubscriberFields, add_subscriber
from digest.web import create_app

BASE = "https://digest.example.org"
IMPORTED = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday
RUN_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HOSTILE_TITLE = '<script>alert("x")</script> Diffusion tricks & <b>bold</b> claims'
PAPERS = (
    PaperRecord(
        title="Diffusion models for protein design",
        abstract="We train diffusion models that design proteins.",
        authors=("Ada Lovelace", "Alan Turing"),
        arxiv_id="2611.00001",
        url="https://arxiv.org/abs/2611.00001",
    ),
    PaperRecord(
        title=HOSTILE_TITLE,
        abstract="Diffusion sampling in fewer steps.",
        arxiv_id="2611.00002",
        url="https://arxiv.org/abs/2611.00002",
    ),
    PaperRecord(
        title="Graph networks for weather",
        abstract="Message passing forecasts.",
        arxiv_id="2611.00003",
        url="https://arxiv.org/abs/2611.00003",
    ),
)
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class PortalTransport(httpx.BaseTransport):
    """A sync httpx transport that runs each request through ``ASGITransport`` on a portal."""

    def __init__(self, app: FastAPI, portal: BlockingPortal, client: tuple[str, int]) -> None:
        self._asgi = httpx.ASGITransport(app=app, client=client)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> tuple[int, httpx.Headers, bytes]:
            response = await self._asgi.handle_async_request(request)
            body = await response.aread()
            return response.status_code, response.headers, body

        status, headers, body = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=body, request=request)


@contextmanager
def web_client(app: FastAPI, *, ip: str = "203.0.113.7") -> Iterator[httpx.Client]:
    """A cookie-keeping client for ``app`` that does not follow redirects."""
    with (
        start_blocking_portal() as portal,
        httpx.Client(transport=PortalTransport(app, portal, (ip, 40000)), base_url=BASE) as client,
    ):
        yield client


class Clock:
    """A settable clock for the app (``create_app(clock=…)``)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    return create_app(settings, clock=clock or Clock(RUN_AT))


def csrf_of(html: str) -> str:
    """The first CSRF field of a page."""
    match = CSRF_FIELD.search(html)
    assert match, "page has no csrf_token field"
    return match.group(1)


def csrf_fields(html: str) -> list[str]:
    return CSRF_FIELD.findall(html)


@dataclass
class Seeded:
    email: str
    token: str
    subscriber_id: int


def seed(
    settings: Settings,
    *,
    email: str = "ada@example.org",
    keywords: tuple[str, ...] = ("diffusion",),
    status: str = "active",
    deliver: bool = True,
) -> Seeded:
    """Papers in the store and a subscriber; ``deliver`` runs a digest so feeds have items."""
    with db.transaction(settings) as session:
        upsert_records(session, list(PAPERS), source="test", now=IMPORTED)
        subscriber = add_subscriber(
            session,
            email=email,
            profile=ProfileSpec(keywords=list(keywords)),
            fields=SubscriberFields(frequency="daily", hour=7, timezone="UTC"),
            settings=settings,
            now=IMPORTED - timedelta(days=1),
            status=status,
            origin="web",
        )
        assert subscriber.id is not None
        result = Seeded(email=subscriber.email, token=subscriber.token, subscriber_id=subscriber.id)
    if deliver:
        report = run_digests(
            settings,
            now=RUN_AT,
            subscriber_email=email,
            transport=OutboxTransport(settings.resolved_outbox_dir),
        )
        assert report.sent == 1, report.as_dict()
    return result


def subscriber_row(settings: Settings, email: str) -> Subscriber | None:
    with db.transaction(settings) as session:
        return session.execute(select(Subscriber).where(col(Subscriber.email) == email)).scalar()


def outbox_count(settings: Settings) -> int:
    directory = settings.resolved_outbox_dir
    return len(list(directory.glob("*.eml"))) if directory.is_dir() else 0


SettingsFactory = Callable[..., Settings]
