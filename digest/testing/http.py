"""Test helpers shipped with the product: a real HTTP server on loopback that misbehaves on cue.

Source clients are tested against this instead of a mocked transport, so timeouts, dropped
connections, chunked bodies and headers go through the real network stack::

    with HttpTestServer() as server:
        server.route("/feed.xml", static(feed_bytes, etag='"v1"'))
        server.queue("/feed.xml", Reply(503), Reply(429, headers={"Retry-After": "2"}))
        ...  # the first two requests fail, the third gets the feed; a fourth with
        ...  # If-None-Match: "v1" gets 304
        assert [r.path for r in server.requests] == ["/feed.xml"] * 3

Replies can be delayed (``delay``), cut short after announcing their full length
(``cut_at``: the client sees a dropped connection), or sent chunked without a length. The
server is ``http.server.ThreadingHTTPServer`` on 127.0.0.1 and a free port; it stops when
the ``with`` block ends, cutting short any delay still running.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

__all__ = ["Handler", "HttpTestServer", "Reply", "Request", "static"]


@dataclass(frozen=True)
class Reply:
    """One response, and how to misbehave while sending it."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0  # seconds before the status line: a slow server, a timeout
    cut_at: int | None = None  # announce the whole body, send this many bytes, drop the line
    chunked: bool = False  # no Content-Length; the body goes in chunks

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        """A JSON reply."""
        return cls(status, json.dumps(value).encode(), dict(headers or {}))


@dataclass(frozen=True)
class Request:
    """A request as the server received it."""

    method: str
    path: str
    query: dict[str, str]  # the first value of each parameter
    headers: dict[str, str]  # lower-case names
    at: float  # time.monotonic() on arrival

    @property
    def target(self) -> str:
        """Path and query, as requested (first values only)."""
        return self.path + (f"?{urlencode(self.query)}" if self.query else "")


Handler = Callable[[Request], Reply]


def static(
    body: bytes,
    *,
    content_type: str = "application/xml",
    etag: str | None = None,
    last_modified: str | None = None,
) -> Handler:
    """A fixed document honouring ``If-None-Match`` / ``If-Modified-Since`` with 304."""
    validators = {"ETag": etag, "Last-Modified": last_modified}
    headers = {name: value for name, value in validators.items() if value}

    def handle(request: Request) -> Reply:
        if (etag and request.headers.get("if-none-match") == etag) or (
            last_modified and request.headers.get("if-modified-since") == last_modified
        ):
            return Reply(304, headers=headers, content_type=content_type)
        return Reply(200, body, headers, content_type)

    return handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HttpTestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (their timeout, a retry) are part of the tests, not errors.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``server.requests`` instead."""

    def do_GET(self) -> None:
        owner = self.server.owner
        parts = urlsplit(self.path)
        request = Request(
            method="GET",
            path=parts.path,
            query={key: values[0] for key, values in parse_qs(parts.query).items()},
            headers={name.lower(): value for name, value in self.headers.items()},
            at=time.monotonic(),
        )
        reply = owner.reply_for(request)
        if reply.delay and owner.stopping.wait(reply.delay):
            self.close_connection = True
            return
        try:
            self._send(reply)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client gave up first (its timeout)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        if reply.status != 304:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(reply.body), 4096):
                chunk = reply.body[start : start + 4096]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            return
        body = b"" if reply.status == 304 else reply.body
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if reply.cut_at is not None:
            self.wfile.write(body[: reply.cut_at])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class HttpTestServer:
    """A loopback HTTP server with routes, one-shot misbehaviours and a request log."""

    def __init__(self) -> None:
        self._routes: dict[str, Handler] = {}
        self._queued: dict[str, deque[Reply]] = {}
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def route(self, path: str, handler: Handler | Reply) -> None:
        """Answer ``path`` with ``handler`` (or always with the same reply).

        A path ending in ``/`` also answers every path below it that has no route of its own.
        """
        fixed = handler
        self._routes[path] = (lambda _r: fixed) if isinstance(fixed, Reply) else fixed

    def queue(self, path: str, *replies: Reply) -> None:
        """Serve these replies, in order, before ``path``'s route answers again."""
        with self._lock:
            self._queued.setdefault(path, deque()).extend(replies)

    def reply_for(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            queued = self._queued.get(request.path)
            if queued:
                return queued.popleft()
        handler = self._routes.get(request.path) or self._prefix_route(request.path)
        if handler is None:
            return Reply.json({"error": f"no route for {request.path}"}, status=404)
        return handler(request)

    def _prefix_route(self, path: str) -> Handler | None:
        """A route registered as ``/prefix/`` answers every path below it; the longest wins."""
        prefixes = [key for key in self._routes if key.endswith("/") and path.startswith(key)]
        return self._routes[max(prefixes, key=len)] if prefixes else None

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str = "") -> str:
        return self.base_url + path

    def start(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _RequestHandler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
