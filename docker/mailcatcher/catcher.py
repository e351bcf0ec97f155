"""A mail catcher for trying paper-digest out: an SMTP server that accepts every message and
keeps it, and a small web page to read what was caught. Not for production.

SMTP on port 1025 (aiosmtpd, no auth, no TLS), web on port 8025:
  /                  the caught messages, newest first
  /messages/NAME     one message (its HTML part in a sandbox, else its text)
  /messages/NAME.eml the message as received
  /api/messages      the list as JSON (for scripts and checks)
Messages are files in MAIL_DIR (default /mail), one .eml each.
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from email.message import EmailMessage
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

MAIL_DIR = Path(os.environ.get("MAIL_DIR", "/mail"))
SMTP_PORT = int(os.environ.get("SMTP_PORT", "1025"))
HTTP_PORT = int(os.environ.get("HTTP_PORT", "8025"))
NAME = re.compile(r"^[0-9]+-[0-9]+$")
_counter = 0
_lock = threading.Lock()
log = logging.getLogger("mailcatcher")


class Handler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        global _counter  # noqa: PLW0603 - one process, one counter
        with _lock:
            _counter += 1
            name = f"{time.time_ns()}-{_counter}"
        envelope_lines = (
            f"X-Caught-Mail-From: {envelope.mail_from}\r\n"
            f"X-Caught-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        (MAIL_DIR / f"{name}.eml").write_bytes(envelope_lines + envelope.original_content)
        log.info("caught %s: %s -> %s", name, envelope.mail_from, ", ".join(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def load(name: str) -> EmailMessage:
    with (MAIL_DIR / f"{name}.eml").open("rb") as file:
        return email.message_from_binary_file(file, policy=email.policy.default)


def summaries() -> list[dict[str, str]]:
    names = sorted(
        (p.stem for p in MAIL_DIR.glob("*.eml")), key=lambda n: n.split("-"), reverse=True
    )
    rows = []
    for name in names:
        msg = load(name)
        rows.append(
            {
                "id": name,
                "date": str(msg.get("Date", "")),
                "from": str(msg.get("From", "")),
                "to": str(msg.get("X-Caught-Rcpt-To", msg.get("To", ""))),
                "subject": str(msg.get("Subject", "")),
            }
        )
    return rows


class Web(BaseHTTPRequestHandler):
    server_version = "mailcatcher"

    def _send(
        self, body: bytes, ctype: str, status: int = 200, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api/messages":
            self._send(json.dumps(summaries(), indent=1).encode(), "application/json")
        elif path == "/":
            rows = "".join(
                f"<tr><td>{html.escape(r['date'])}</td><td>{html.escape(r['to'])}</td>"
                f"<td><a href='/messages/{r['id']}'>"
                f"{html.escape(r['subject']) or '(no subject)'}</a></td>"
                f"<td><a href='/messages/{r['id']}.eml'>.eml</a></td></tr>"
                for r in summaries()
            )
            page = (
                "<!doctype html><meta charset=utf-8><title>Caught mail</title>"
                "<style>body{font:14px sans-serif;margin:2em}"
                "td,th{padding:.3em .8em;text-align:left}"
                "tr:nth-child(even){background:#f4f4f4}</style>"
                f"<h1>Caught mail</h1><p>SMTP on port {SMTP_PORT}; newest first.</p>"
                "<table><tr><th>date</th><th>to</th><th>subject</th><th></th></tr>"
                f"{rows or '<tr><td colspan=4>nothing yet</td></tr>'}</table>"
            )
            self._send(page.encode(), "text/html; charset=utf-8")
        elif (
            (m := re.fullmatch(r"/messages/([0-9-]+)(\.eml)?", path))
            and NAME.match(m[1])
            and (MAIL_DIR / f"{m[1]}.eml").is_file()
        ):
            if m[2]:
                self._send((MAIL_DIR / f"{m[1]}.eml").read_bytes(), "message/rfc822")
                return
            part = load(m[1]).get_body(preferencelist=("html", "plain"))
            content = part.get_content() if part is not None else "(empty)"
            if part is not None and part.get_content_type() == "text/html":
                # The mail's own HTML, without scripts or access to this page.
                self._send(
                    content.encode(),
                    "text/html; charset=utf-8",
                    extra={"Content-Security-Policy": "sandbox"},
                )
            else:
                self._send(content.encode(), "text/plain; charset=utf-8")
        elif path == "/healthz":
            self._send(b"ok\n", "text/plain")
        else:
            self._send(b"not found\n", "text/plain", HTTPStatus.NOT_FOUND)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mailcatcher %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
    MAIL_DIR.mkdir(parents=True, exist_ok=True)
    controller = Controller(Handler(), hostname="0.0.0.0", port=SMTP_PORT)  # noqa: S104
    controller.start()
    web = ThreadingHTTPServer(("0.0.0.0", HTTP_PORT), Web)  # noqa: S104
    # PID 1 in a container: without a handler SIGTERM would be ignored.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("SMTP on :%s, web on :%s, mail in %s", SMTP_PORT, HTTP_PORT, MAIL_DIR)
    try:
        web.serve_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
