"""The service on the real APScheduler and the real clock: on taking the lease it fetches
(the sources' library function, a file source here) and then delivers; stop() releases."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from digest.config.settings import Settings
from digest.scheduler.lease import read_lease
from digest.scheduler.service import SchedulerService
from digest.store import db
from digest.store.models import Run
from digest.subscribers.library import ProfileSpec, SubscriberFields, add_subscriber
from tests.scheduler_support import digests, outbox_files

LISTING = Path(__file__).parent / "data" / "listings" / "hf" / "daily_papers.json"


def test_takeover_fetches_then_delivers_and_stop_releases(
    backend: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        sources=[{"name": "hf-drop", "kind": "file", "url": str(LISTING)}],
        scheduler_deliver_interval=0.2,
        scheduler_heartbeat=0.2,
        scheduler_lease_ttl=2.0,
        scheduler_misfire_grace=30,
    )
    with db.transaction(settings) as session:
        add_subscriber(
            session,
            email="ada@example.org",
            profile=ProfileSpec(keywords=["contrastive loss", "multilingual"]),
            fields=SubscriberFields(frequency="daily", hour=0, timezone="UTC"),
            settings=settings,
            now=datetime.now(UTC) - timedelta(days=1),
        )
    service = SchedulerService(settings)
    service.start()
    try:
        deadline = time.monotonic() + 20
        while not [d for _, d in digests(settings) if d.status == "sent"]:
            assert time.monotonic() < deadline, "no digest within 20 s"
            time.sleep(0.05)
        jobs = service.job_options()
    finally:
        service.stop()

    assert set(jobs) == {"lease", "fetch", "deliver"}
    for name in ("fetch", "deliver"):
        assert jobs[name]["executor"] == "jobs"  # one worker: never both at once
        assert jobs[name]["coalesce"] is True and jobs[name]["max_instances"] == 1
        assert jobs[name]["misfire_grace_time"] == 30
    assert jobs["lease"]["executor"] == "lease" and jobs["lease"]["misfire_grace_time"] is None
    assert jobs["fetch"]["trigger"].startswith("cron[")

    with db.transaction(settings) as session:
        runs = session.execute(select(Run).order_by(col(Run.id))).scalars().all()
        lease = read_lease(session)
    kinds = [(r.kind, r.source, r.status) for r in runs]
    assert kinds[0] == ("fetch", "hf-drop", "ok") and runs[0].new_count == 3  # fetched first
    assert ("deliver", None, "ok") in kinds
    assert [r.kind for r in runs].count("fetch") == 1  # hourly: once, at takeover
    ((_, digest),) = digests(settings)
    assert digest.item_count == 2 and len(outbox_files(settings)) == 1
    assert lease is not None and lease.holder == service.holder
    assert lease.expires_at <= datetime.now(UTC)  # released: a standby need not wait
    assert not service.is_leader and service.job_options() == {}
