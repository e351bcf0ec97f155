"""What an SMTP reply or a socket failure means for the pool: one :class:`SessionError` kind.

Pure functions of the reply code, its text, the stage and the failure, so the table is
tested on its own:

============  ===================================================================  ==========
kind          when                                                                  pool
============  ===================================================================  ==========
permanent     5xx at RCPT TO or DATA; 552 (size) or 555 at MAIL FROM; over the      outcome
              relay's EHLO ``SIZE``; non-ASCII address and no SMTPUTF8
retry         another 4xx at MAIL FROM, RCPT TO or DATA (the relay answered)        retry
lost          no answer: connection dropped or reset, timeout, deadline passed      retry,
                                                                                    breaker
idle          a reused connection was found closed at MAIL FROM (idle timeout), or  reconnect
              its 421 there says so ("timeout", or idle for IDLE_421 seconds)
throttle      421 anywhere, or a 4xx saying "too many connections" / "slow down"    throttle
down          cannot set up a session: refused, TLS handshake, no greeting,         breaker
              no answer, 4xx at greeting/EHLO/AUTH
config        530/535 (authentication), 5xx at greeting, EHLO, STARTTLS or AUTH,    halt
              another 5xx at MAIL FROM (the sender is refused), STARTTLS or AUTH
              not offered, an untrusted certificate: no retry will fix it
============  ===================================================================  ==========

A 5xx at MAIL FROM other than 552/555 refuses our envelope sender, the same for every
message: failing each message for good (and counting it against its reader) would turn a
configuration mistake into thousands of lost digests, so the pool stops instead.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from typing import Literal

__all__ = ["Kind", "SessionError", "Stage", "lost", "refusal", "setup_error", "setup_refusal"]

Kind = Literal["permanent", "retry", "lost", "idle", "throttle", "down", "config"]
Stage = Literal["connect", "MAIL FROM", "RCPT TO", "DATA", "SIZE"]

# Relays' ways of saying "fewer connections" or "slower" with a 4xx other than 421.
_SLOW_DOWN = re.compile(r"too many|slow down|rate.?limit|throttl", re.IGNORECASE)
_MESSAGE_SPECIFIC_AT_MAIL = frozenset({552, 555})  # RFC 1870 size; unsupported parameters
_AUTH_CODES = frozenset({530, 535})  # authentication required / failed: configuration
# Postfix and Exim answer the next command of a connection they timed out with a 421
# ("421 4.4.2 Error: timeout exceeded"): that is a closed idle connection, not a throttle.
_TIMEOUT = re.compile(r"time ?out|timed out", re.IGNORECASE)
IDLE_421 = 5.0  # seconds idle after which a 421 at MAIL FROM is taken for the idle close


class SessionError(Exception):
    """One failed step, classified for the pool (see the module doc)."""

    def __init__(
        self, kind: Kind, message: str, *, code: int | None = None, stage: Stage = "connect"
    ) -> None:
        super().__init__(message)
        self.kind: Kind = kind
        self.code = code
        self.stage: Stage = stage
        # A lost transaction that got no answer in time (not merely a dropped connection).
        self.silent = False


def _slows_down(code: int, text: str) -> bool:
    return code == 421 or (400 <= code < 500 and _SLOW_DOWN.search(text) is not None)


def setup_refusal(where: str, code: int, reply: bytes | str, step: str) -> SessionError:
    """A reply code refusing the greeting, EHLO/HELO, STARTTLS or AUTH."""
    text = one_line(reply)
    message = f"{where}: {code} {text} ({step})"
    if _slows_down(code, text):
        return SessionError("throttle", message, code=code)
    if 400 <= code < 500:
        return SessionError("down", message, code=code)
    return SessionError("config", message, code=code)


def setup_error(
    where: str, exc: BaseException, *, expired: bool, deadline: float, timeout: float
) -> SessionError:
    """A set-up failure without a reply code (``expired``: the deadline shut the socket)."""
    kind: Kind = "down"
    if expired:
        text = f"no complete answer within the {deadline:g}s deadline"
    elif timed_out(exc):
        text = f"no answer within {timeout:g}s"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        kind, text = "config", f"TLS certificate refused: {exc.verify_message}"
    elif isinstance(exc, ssl.SSLError):
        text = f"TLS handshake failed: {exc.reason or exc}"
    elif isinstance(exc, smtplib.SMTPServerDisconnected):
        text = "connection closed"
    elif isinstance(exc, smtplib.SMTPException):
        kind, text = "config", str(exc)  # e.g. no AUTH mechanism in common
    else:
        text = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
    return SessionError(kind, f"{where}: {text or type(exc).__name__} (connecting)")


def refusal(
    where: str, code: int, reply: bytes | str, stage: Stage, *, idle: float = 0.0
) -> SessionError:
    """A reply code other than success at MAIL FROM, RCPT TO or DATA; ``idle``: seconds
    the (reused) connection had been idle before this transaction."""
    text = one_line(reply)
    kind: Kind
    if code == 421 and stage == "MAIL FROM" and (idle >= IDLE_421 or _TIMEOUT.search(text)):
        kind = "idle"
    elif _slows_down(code, text):
        kind = "throttle"
    elif 400 <= code < 500:
        kind = "retry"
    elif code in _AUTH_CODES:
        kind = "config"
    elif stage == "MAIL FROM" and code not in _MESSAGE_SPECIFIC_AT_MAIL:
        kind = "config"  # the relay refuses our sender (see the module doc)
    else:
        kind = "permanent"
    return SessionError(kind, f"{where}: {code} {text} ({stage})", code=code, stage=stage)


def lost(
    where: str,
    exc: BaseException,
    stage: Stage,
    *,
    expired: bool,
    deadline: float,
    timeout: float,
    reused: bool,
) -> SessionError:
    """A transaction that ended without an answer (dropped, timed out, past its deadline)."""
    if expired:
        text = f"no complete answer within the {deadline:g}s transaction deadline"
    elif timed_out(exc):
        text = f"timed out after {timeout:g}s"
    else:
        kind: Kind = "idle" if reused and stage == "MAIL FROM" else "lost"
        return SessionError(kind, f"{where}: connection lost ({stage}): {exc}", stage=stage)
    error = SessionError("lost", f"{where}: {text} ({stage})", stage=stage)
    error.silent = True
    return error


def timed_out(exc: BaseException) -> bool:
    """A socket timeout, also when smtplib re-raised it as SMTPServerDisconnected."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


def one_line(reply: bytes | str) -> str:
    """A server reply on one line (multi-line replies joined)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(text.split())
