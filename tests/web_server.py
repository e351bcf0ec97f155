"""A real web server for tests: the app under uvicorn in a background thread on loopback.

The socket is bound first (127.0.0.1, a free port chosen by the kernel) so the app's
``base_url`` can be the server's own URL: links in emails and feeds' self links then point
back at the server the test talks to. The server always shuts down, even when the test fails::

    with SmtpSink() as sink, live_app(make_settings, sink) as live:
        httpx.get(live.url + "/")
        live.settings  # what the app runs with
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from digest.config.settings import Settings
from digest.testing.smtp import SmtpSink

START_TIMEOUT = 10.0  # seconds for uvicorn to start serving
STOP_TIMEOUT = 10.0  # seconds for it to finish open requests and exit


@dataclass(frozen=True)
class LiveApp:
    """A running app: its URL (no trailing slash) and the settings it runs with."""

    url: str
    settings: Settings


class ServerThread:
    """uvicorn serving ``app`` on an already bound socket, in a daemon thread."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        config = uvicorn.Config(
            app,
            loop="asyncio",  # no uvloop: the same loop everywhere
            http="h11",
            ws="none",  # no websockets import (and its deprecation warnings)
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.sock = sock
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="uvicorn-test", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run(sockets=[self.sock])
        except BaseException as exc:  # reported by start()/stop() in the test thread
            self.error = exc

    def start(self) -> None:
        self.thread.start()
        # uvicorn sets ``started`` once it accepts connections; poll it briefly.
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            self.stop()
            raise RuntimeError(f"uvicorn did not start within {START_TIMEOUT} s: {self.error!r}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(STOP_TIMEOUT)
        self.sock.close()
        if self.thread.is_alive():
            raise RuntimeError(f"uvicorn did not stop within {STOP_TIMEOUT} s")
        if self.error is not None:
            raise RuntimeError("uvicorn failed") from self.error


def bind_loopback() -> socket.socket:
    """A listening TCP socket on 127.0.0.1 at a port the kernel chose."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@contextmanager
def serve(app_for: Callable[[str], Any]) -> Iterator[str]:
    """Serve ``app_for(url)`` on loopback; yields the URL; always shuts the server down."""
    sock = bind_loopback()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        app = app_for(url)
    except BaseException:
        sock.close()
        raise
    server = ServerThread(app, sock)
    server.start()
    try:
        yield url
    finally:
        server.stop()


@contextmanager
def live_app(
    make_settings: Callable[..., Settings],
    sink: SmtpSink | None = None,
    *,
    prepare: Callable[[Settings], None] | None = None,
    **overrides: Any,
) -> Iterator[LiveApp]:
    """The real web app (``create_app``) on loopback, its ``base_url`` the server's URL.

    With ``sink`` the app sends mail over SMTP to it; ``prepare(settings)`` runs before the
    app is built (to import listings, deliver digests …) with the very settings it gets.
    """
    from digest.web.app import create_app  # noqa: PLC0415 - the app is built per server

    holder: list[Settings] = []

    def build(url: str) -> Any:
        values: dict[str, Any] = {"base_url": url}
        if sink is not None:
            values.update(delivery="smtp", smtp_host=sink.host, smtp_port=sink.port, smtp_retries=0)
        settings = make_settings(**{**values, **overrides})
        if prepare is not None:
            prepare(settings)
        holder.append(settings)
        return create_app(settings)

    with serve(build) as url:
        yield LiveApp(url=url, settings=holder[0])
