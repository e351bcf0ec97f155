"""``digest serve``, ``digest scheduler`` and ``digest status``: the always-on service."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from digest.cli.common import console, get_settings, handle_errors, parse_now, print_json
from digest.store import db

if TYPE_CHECKING:
    from digest.config.settings import Settings


def _run_scheduler_only(settings: Settings) -> None:
    """The scheduler in the foreground until SIGTERM/SIGINT (the running job finishes)."""
    from digest.scheduler.service import (  # noqa: PLC0415 - APScheduler only when serving
        SchedulerService,
    )
    from digest.scheduler.signals import (  # noqa: PLC0415 - imported when the command runs: --help stays fast
        install_signal_handlers,
        run_until_stopped,
    )

    stop = threading.Event()
    install_signal_handlers(stop)
    run_until_stopped(SchedulerService(settings), stop)


@handle_errors
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address the web app listens on (DIGEST_WEB_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port of the web app (DIGEST_WEB_PORT).")
    ] = None,
    no_web: Annotated[
        bool, typer.Option("--no-web", help="Run the scheduler only, without the web app.")
    ] = False,
) -> None:
    """Run the scheduler (fetch and deliver on time) and the web app.

    Any number of these may run against one database: one holds the scheduler lease and
    runs the jobs, the others wait on standby. SIGTERM or Ctrl-C finishes the running job.

    Example: digest serve --host 0.0.0.0 --port 8000
    """
    settings = get_settings()
    if no_web:
        _run_scheduler_only(settings)
        return
    import uvicorn  # noqa: PLC0415 - only when serving the web app

    from digest.scheduler.service import SchedulerService  # noqa: PLC0415 - APScheduler
    from digest.scheduler.signals import install_signal_handlers  # noqa: PLC0415 - imported when the command runs: --help stays fast
    from digest.web.app import create_app  # noqa: PLC0415 - FastAPI only when serving

    install_signal_handlers(threading.Event())
    service = SchedulerService(settings)
    web = create_app(settings)
    service.start()
    try:
        # uvicorn handles SIGTERM/SIGINT while it runs, then re-raises them to our handlers.
        # access_log off: the app logs each request itself, with tokens redacted.
        config = uvicorn.Config(
            web,
            host=host or settings.web_host,
            port=port or settings.web_port,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.web_forwarded_allow_ips,
        )
        uvicorn.Server(config).run()
    finally:
        service.stop()


@handle_errors
def scheduler() -> None:
    """Run the scheduler alone, in the foreground (no web app).

    Example: DIGEST_SCHEDULER_DELIVER_INTERVAL=60 digest scheduler
    """
    _run_scheduler_only(get_settings())


@handle_errors
def status(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    now: Annotated[
        str | None, typer.Option("--now", help="Pretend it is this ISO 8601 time (default: now).")
    ] = None,
) -> None:
    """Sources, next deliveries, the scheduler, recent runs and failed deliveries.

    Example: digest status --json
    """
    from digest.scheduler.status import collect_status  # noqa: PLC0415 - imported when the command runs: --help stays fast

    settings = get_settings()
    with db.transaction(settings) as session:
        info = collect_status(session, now=parse_now(now), settings=settings)
    if json_out:
        print_json(info)
        return
    _print_status(info)


def _print_status(info: dict[str, Any]) -> None:
    console.print(f"papers: {info['papers']}")
    console.print("subscribers: " + ", ".join(f"{k} {v}" for k, v in info["subscribers"].items()))
    console.print("digests: " + ", ".join(f"{k} {v}" for k, v in info["digests"].items()))
    lease = info["scheduler"]
    if lease is None:
        console.print("scheduler: never ran")
    else:
        state = "running" if lease["active"] else "not running (lease expired)"
        console.print(f"scheduler: {state}, {lease['holder']} until {lease['expires_at']}")
    sources = Table("source", "papers", "last success", "last error")
    for name, s in info["sources"].items():
        error = f"{s['last_error_at']}: {s['last_error']}" if s["last_error"] else ""
        sources.add_row(name, str(s["papers"]), s["last_success"] or "", error)
    console.print(sources)
    upcoming = Table("next delivery (UTC)", "subscriber", "period", "local time")
    for d in info["next_deliveries"]:
        when = "now (overdue)" if d["overdue"] else d["send_at"]
        upcoming.add_row(when, d["email"], d["period"], d["local_send_at"])
    console.print(upcoming)
    runs = Table("run", "kind", "source", "status", "started", "new", "seen", "error")
    for r in info["runs"]:
        runs.add_row(
            str(r["id"]),
            r["kind"],
            r["source"] or "",
            r["status"],
            r["started_at"],
            str(r["new"]),
            str(r["seen"]),
            r["error"] or "",
        )
    console.print(runs)
    if info["failed_deliveries"]:
        failed = Table("failed delivery", "period", "attempts", "next attempt", "error")
        for f in info["failed_deliveries"]:
            failed.add_row(
                f["email"],
                f["period"],
                str(f["attempts"]),
                f["next_attempt_at"] or "never",
                f["error"] or "",
            )
        console.print(failed)


@handle_errors
def worker(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Delivery batches at a time.")
    ] = 1,
    burst: Annotated[
        bool, typer.Option("--burst", help="Exit once the queue is empty (tests, batch jobs).")
    ] = False,
) -> None:
    """Deliver queued digest batches (DIGEST_QUEUE=procrastinate, PostgreSQL); run as many
    as you like, on any machine. Stops cleanly on SIGTERM/SIGINT.

    Example: DIGEST_QUEUE=procrastinate digest worker --concurrency 2
    """
    from digest.queue import run_worker  # noqa: PLC0415 - procrastinate only for workers

    run_worker(get_settings(), concurrency=concurrency, wait=not burst)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("scheduler")(scheduler)
    app.command("worker")(worker)
    app.command("status")(status)
