"""``digest serve``, ``digest scheduler`` and ``digest status``: the always-on service."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer

from digest.cli.common import (
    console,
    get_settings,
    handle_errors,
    parse_now,
    print_json,
    print_warning,
    refuse_together,
)

if TYPE_CHECKING:
    from digest.config.settings import Settings

LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::"}  # noqa: S104 - names, not a bind


def base_url_mismatch(base_url: str, host: str, port: int) -> str | None:
    """Why every link mailed would be dead, or None.

    Only a loopback base URL with an explicit port is judged: ``http://localhost:8000``
    while listening on 8765 points nowhere. A base URL on another host, or without a port
    (a proxy on 80/443 in front), is what a reverse proxy looks like and is left alone.
    """
    parts = urlsplit(base_url)
    if (parts.hostname or "") not in LOOPBACK or parts.port is None:
        return None
    if parts.port == port:
        return None
    where = f"{'[' + host + ']' if ':' in host else host}:{port}"
    fixed = f"{parts.scheme}://{parts.hostname}:{port}"
    return (
        f"DIGEST_BASE_URL is {base_url} but the web app listens on {where}: every link in "
        f"mails and feeds (confirmations, unsubscribes) would be dead; set "
        f"DIGEST_BASE_URL={fixed} (or serve on port {parts.port})"
    )


def _run_scheduler_only(settings: Settings) -> None:
    """The scheduler in the foreground until SIGTERM/SIGINT (the running job finishes)."""
    from digest.scheduler.service import (  # noqa: PLC0415 - APScheduler only when serving
        SchedulerService,
    )
    from digest.scheduler.signals import (  # noqa: PLC0415 - keep --help fast
        install_signal_handlers,
        run_until_stopped,
    )

    stop = threading.Event()
    install_signal_handlers(stop)
    run_until_stopped(SchedulerService(settings), stop)


def _serve_until(server: Any, stop: threading.Event) -> None:
    """Run uvicorn until it exits or ``stop`` is set: a signal that arrives while the app
    starts, before uvicorn has its own handlers, must stop it too (it was lost before)."""

    def watch() -> None:
        stop.wait()
        server.should_exit = True

    threading.Thread(target=watch, name="serve-stop", daemon=True).start()
    server.run()


@handle_errors
def serve(
    host: Annotated[
        str | None,
        typer.Option(
            "--host", metavar="ADDRESS", help="Address the web app listens on (DIGEST_WEB_HOST)."
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port of the web app (DIGEST_WEB_PORT)."),
    ] = None,
    no_web: Annotated[
        bool, typer.Option("--no-web", help="Run the scheduler only, without the web app.")
    ] = False,
) -> None:
    """Run the scheduler (fetch and deliver on time) and the web app.

    Any number of these may run against one database: one holds the scheduler lease and
    runs the jobs, the others wait on standby. SIGTERM or Ctrl-C finishes the running job.
    Warns when DIGEST_BASE_URL names this machine on another port than the one served
    (every mailed link would be dead).

    Example: digest serve --host 0.0.0.0 --port 8000
    """
    refuse_together({"--no-web": no_web, "--host": host is not None})
    refuse_together({"--no-web": no_web, "--port": port is not None})
    settings = get_settings()
    if no_web:
        _run_scheduler_only(settings)
        return
    import uvicorn  # noqa: PLC0415 - only when serving the web app

    from digest.scheduler.service import SchedulerService  # noqa: PLC0415 - APScheduler
    from digest.scheduler.signals import install_signal_handlers  # noqa: PLC0415 - keep --help fast
    from digest.web.app import create_app  # noqa: PLC0415 - FastAPI only when serving

    listen_host, listen_port = host or settings.web_host, port or settings.web_port
    mismatch = base_url_mismatch(settings.base_url, listen_host, listen_port)
    if mismatch:
        print_warning(mismatch)
    stop = threading.Event()
    install_signal_handlers(stop)
    service = SchedulerService(settings)
    web = create_app(settings)
    service.start()
    try:
        # uvicorn handles SIGTERM/SIGINT while it runs, then re-raises them to our handlers.
        # access_log off: the app logs each request itself, with tokens redacted.
        config = uvicorn.Config(
            web,
            host=listen_host,
            port=listen_port,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.web_forwarded_allow_ips,
        )
        _serve_until(uvicorn.Server(config), stop)
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
        str | None,
        typer.Option(
            "--now", metavar="TIME", help="Pretend it is this ISO 8601 time (default: now)."
        ),
    ] = None,
) -> None:
    """Sources, next deliveries, the scheduler, recent runs and failed deliveries.

    Example: digest status --json
    """
    from digest.scheduler.status import collect_status  # noqa: PLC0415 - keep --help fast
    from digest.store import db  # noqa: PLC0415 - keep --help fast

    when = parse_now(now)
    settings = get_settings()
    with db.reading(settings) as session:
        info = collect_status(session, now=when, settings=settings)
    if json_out:
        print_json(info)
        return
    _print_status(info)


def _print_status(info: dict[str, Any]) -> None:
    from rich.table import Table  # noqa: PLC0415 - keep --help fast

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
        int,
        typer.Option("--concurrency", "-c", min=1, metavar="N", help="Delivery batches at a time."),
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
