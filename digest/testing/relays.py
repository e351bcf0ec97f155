"""Relays that are down or hostile, as raw sockets on loopback (no SMTP library).

::

    with BrokenRelay("trickle-ehlo", interval=0.05) as relay:
        pool = SmtpPool(host=relay.host, port=relay.port, transaction_deadline=1.0, ...)

Modes:

``refuse``
    Nothing listens on the port (it is bound, so no one else takes it): every connection is
    refused at once.
``silent``
    Connections are accepted and never answered.
``trickle-greeting``
    ``220-`` continuation lines, one byte every ``interval`` seconds, forever: each byte
    resets a socket timeout, so only an overall deadline ends the wait.
``trickle-ehlo``
    A proper ``220`` greeting, then the reply to EHLO trickles ``250-`` lines the same way.
``trickle-data``
    A working session (EHLO, MAIL FROM, RCPT TO and DATA answered at once), then the reply
    to the end of the data trickles ``250-`` lines: the transaction itself must time out.

``connections`` counts accepted connections (0 for ``refuse``).
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

__all__ = ["BrokenRelay", "RelayMode"]

RelayMode = Literal["refuse", "silent", "trickle-greeting", "trickle-ehlo", "trickle-data"]

_GREETING_LINE = b"220-relay.test is warming up, please hold\r\n"
_MORE_LINE = b"250-relay.test has one more thing to say\r\n"
_REPLIES = {
    b"EHLO": b"250 relay.test\r\n",
    b"HELO": b"250 relay.test\r\n",
    b"DATA": b"354 go on\r\n",
}


@dataclass
class _Client:
    sock: socket.socket
    trickle: bytes = b""  # the line repeated one byte at a time; empty: not (yet) trickling
    position: int = 0
    due: float = 0.0
    received: bytearray = field(default_factory=bytearray)
    in_data: bool = False


class BrokenRelay:
    """A misbehaving relay on loopback. Use as a context manager."""

    def __init__(self, mode: RelayMode, *, host: str = "127.0.0.1", interval: float = 0.05):
        self.mode: RelayMode = mode
        self.host = host
        self.port = 0
        self.interval = interval
        self._connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind((self.host, 0))
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        if self.mode == "refuse":
            return  # bound, never listening: the kernel refuses every connection
        listener.listen(16)
        listener.setblocking(False)
        self._thread = threading.Thread(target=self._serve, name="broken-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # The server loop --------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._listener is not None
        clients: dict[socket.socket, _Client] = {}
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            try:
                while not self._stop.is_set():
                    for key, _ in selector.select(timeout=min(self.interval, 0.05)):
                        if key.fileobj is self._listener:
                            self._accept(selector, clients)
                        else:
                            self._read(selector, clients, key.data)
                    now = time.monotonic()
                    for client in list(clients.values()):
                        if client.trickle and now >= client.due:
                            self._drip(selector, clients, client, now)
            finally:
                for client in clients.values():
                    client.sock.close()

    def _accept(
        self, selector: selectors.BaseSelector, clients: dict[socket.socket, _Client]
    ) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        with self._lock:
            self._connections += 1
        client = _Client(sock, due=time.monotonic())
        if self.mode == "trickle-greeting":
            client.trickle = _GREETING_LINE
        elif self.mode in ("trickle-ehlo", "trickle-data"):
            sock.sendall(b"220 relay.test ESMTP ready\r\n")
        clients[sock] = client
        selector.register(sock, selectors.EVENT_READ, data=client)

    def _read(
        self,
        selector: selectors.BaseSelector,
        clients: dict[socket.socket, _Client],
        client: _Client,
    ) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(selector, clients, client)
            return
        client.received += data
        if self.mode == "trickle-ehlo" and not client.trickle and b"\r\n" in client.received:
            client.trickle, client.due = _MORE_LINE, time.monotonic()
        elif self.mode == "trickle-data":
            self._converse(client)

    @staticmethod
    def _converse(client: _Client) -> None:
        """Answer a plain session until the data has arrived, then start trickling."""
        while not client.trickle:
            if client.in_data:
                end = client.received.find(b"\r\n.\r\n")
                if end < 0:
                    return
                del client.received[: end + 5]
                client.trickle, client.due = _MORE_LINE, time.monotonic()
                return
            end = client.received.find(b"\r\n")
            if end < 0:
                return
            verb = bytes(client.received[:4]).upper()
            del client.received[: end + 2]
            client.in_data = verb == b"DATA"
            client.sock.sendall(_REPLIES.get(verb, b"250 OK\r\n"))

    def _drip(
        self,
        selector: selectors.BaseSelector,
        clients: dict[socket.socket, _Client],
        client: _Client,
        now: float,
    ) -> None:
        byte = client.trickle[client.position : client.position + 1]
        try:
            client.sock.send(byte)
        except BlockingIOError:
            return
        except OSError:
            self._drop(selector, clients, client)
            return
        client.position = (client.position + 1) % len(client.trickle)
        client.due = now + self.interval

    @staticmethod
    def _drop(
        selector: selectors.BaseSelector,
        clients: dict[socket.socket, _Client],
        client: _Client,
    ) -> None:
        selector.unregister(client.sock)
        clients.pop(client.sock, None)
        client.sock.close()
