"""The pool's pure parts: rate windows (fake clock), retry backoff, breaker, throttle, and
what each SMTP reply or socket failure means."""

from __future__ import annotations

import random
import smtplib
import ssl

import pytest

from digest.delivery.control import CircuitBreaker, RetryPolicy, Throttle
from digest.delivery.ratelimit import RateLimiter, SlidingWindow
from digest.delivery.replies import Kind, Stage, lost, refusal, setup_error, setup_refusal


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def most_in_any_window(times: list[float], window: float, *, slack: float = 1e-9) -> int:
    """The largest number of times in any half-open interval [t, t + window - slack).

    ``slack`` absorbs float rounding: a slot is rebuilt as ``now + wait`` where the limiter
    computed ``wait = slot - now``.
    """
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window - slack:
            start += 1
        best = max(best, end - start + 1)
    return best


# Sliding windows ------------------------------------------------------------------------


def test_window_waits_for_the_oldest_event_to_leave() -> None:
    window = SlidingWindow(3, 1.0)
    for at in (0.0, 0.2, 0.4):
        assert window.earliest(at) == at
        window.record(at)
    assert window.earliest(0.5) == 1.0  # the event at 0.0 leaves the window at 1.0
    window.record(1.0)
    assert window.earliest(1.0) == 1.2


def test_limiter_never_exceeds_either_window() -> None:
    clock, rng = FakeClock(0.0), random.Random(7)
    limiter = RateLimiter(per_second=5, per_hour=40, clock=clock)
    slots = []
    for _ in range(60):
        wait = limiter.reserve()
        assert wait is not None and wait >= 0
        slots.append(clock.now + wait)
        clock.now += rng.choice([0.0, 0.0, 0.05, 0.3, wait])  # callers arrive unevenly
    assert most_in_any_window(slots, 1.0) == 5
    assert most_in_any_window(slots, 3600.0) == 40
    assert slots == sorted(slots)
    assert slots[-1] >= 3600.0  # the 41st had to wait for the hour


def test_limiter_defers_instead_of_waiting_long() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_hour=2, clock=clock)
    assert limiter.reserve(max_wait=60) == 0.0
    assert limiter.reserve(max_wait=60) == 0.0
    assert limiter.reserve(max_wait=60) is None  # an hour away: nothing taken
    clock.now += 3600
    assert limiter.reserve(max_wait=60) == 0.0


def test_limiter_counts_sends_before_it_existed() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_hour=3, sent_before=[100.0, 3599.0, 7200.0], clock=clock)
    assert limiter.reserve(max_wait=0) == 0.0  # the 7,200 s old send is outside the hour
    assert limiter.reserve(max_wait=0) is None
    assert limiter.reserve() == pytest.approx(1.0)  # the 3,599 s old one leaves in 1 s


def test_unlimited_limiter_never_waits() -> None:
    limiter = RateLimiter()
    assert not limiter.limited
    assert [limiter.reserve(max_wait=0) for _ in range(1000)] == [0.0] * 1000


def test_windows_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="limit"):
        SlidingWindow(0, 1.0)


# Retry policy ---------------------------------------------------------------------------


def test_retry_delays_double_with_bounded_jitter_and_a_cap() -> None:
    policy = RetryPolicy(retries=3, wait=1.0, max_wait=5.0, rng=random.Random(1))
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (10, 5.0)]:
        delay = policy.delay(attempt)
        assert base <= delay <= base + 1.0
    assert policy.allows(3) and not policy.allows(4)
    assert RetryPolicy(retries=0, wait=0.0).delay(1) == 0.0


# Circuit breaker ------------------------------------------------------------------------


def test_breaker_opens_on_a_streak_and_stays_open() -> None:
    breaker = CircuitBreaker(3)
    assert not breaker.failure("refused")
    assert not breaker.failure("refused")
    breaker.success()  # an answer ends the streak
    assert not breaker.failure("refused")
    assert not breaker.failure("refused")
    assert breaker.failure("timed out")  # third in a row: opens, once
    assert breaker.is_open and breaker.reason == "timed out"
    breaker.success()
    assert breaker.is_open and not breaker.failure("refused")


def test_dropped_connections_alone_do_not_open_the_breaker() -> None:
    breaker = CircuitBreaker(3)
    for _ in range(5):  # a relay restarting drops every connection at once
        assert not breaker.failure("connection lost", decisive=False)
    assert not breaker.is_open and breaker.streak == 5
    assert breaker.failure("Connection refused")  # and is not back: now it opens


# Throttle -------------------------------------------------------------------------------


def test_throttle_takes_connections_away_and_gives_them_back_slowly() -> None:
    throttle = Throttle(4, policy=RetryPolicy(wait=1.0, rng=random.Random(3)), recovery=30.0)
    assert throttle.strike(0.0, pause=False) == 0.0
    assert throttle.allowed == 3 and throttle.should_park()
    throttle.active = 3
    pause = throttle.strike(1.0, pause=True)
    assert 2.0 <= pause <= 3.0  # the second 421 in a row: doubled
    assert throttle.pause_left(1.0) == pytest.approx(pause)
    for at in (2.0, 3.0, 4.0, 5.0):
        throttle.strike(at, pause=False)
    assert throttle.allowed == 1  # never below one connection
    assert not throttle.success(20.0)  # too soon after the last 421
    assert throttle.success(35.0) and throttle.allowed == 2
    throttle.active = 1
    assert throttle.may_unpark()
    assert not throttle.success(40.0)  # one connection per recovery period
    assert throttle.success(65.0) and throttle.allowed == 3


# What replies mean ----------------------------------------------------------------------

WHERE = "SMTP relay.test:25"


@pytest.mark.parametrize(
    ("code", "text", "stage", "kind"),
    [
        (550, "5.1.1 No such user", "RCPT TO", "permanent"),
        (554, "5.7.1 Message looks like spam", "DATA", "permanent"),
        (552, "5.3.4 Message size exceeds fixed limit", "MAIL FROM", "permanent"),
        (555, "5.5.4 MAIL FROM parameters not recognized", "MAIL FROM", "permanent"),
        (553, "5.7.1 Sender address rejected", "MAIL FROM", "config"),
        (530, "5.7.0 Authentication required", "RCPT TO", "config"),
        (450, "4.2.1 Mailbox busy", "RCPT TO", "retry"),
        (451, "4.7.1 Greylisted, try again later", "RCPT TO", "retry"),
        (421, "4.7.0 Closing connection", "DATA", "throttle"),
        (450, "4.7.1 Too many messages, slow down", "MAIL FROM", "throttle"),
        (451, "4.7.1 Rate limit exceeded", "MAIL FROM", "throttle"),
    ],
)
def test_refusals_by_code_and_stage(code: int, text: str, stage: Stage, kind: Kind) -> None:
    error = refusal(WHERE, code, text.encode(), stage)
    assert (error.kind, error.code, error.stage) == (kind, code, stage)
    assert str(error) == f"{WHERE}: {code} {text} ({stage})"


def test_a_421_at_mail_from_after_idling_is_the_idle_close_not_a_throttle() -> None:
    def kind(text: str, idle: float) -> Kind:
        return refusal(WHERE, 421, text, "MAIL FROM", idle=idle).kind

    assert kind("4.4.2 relay.test Error: timeout exceeded", 0.0) == "idle"  # Postfix
    assert kind("relay.test: SMTP command timeout - closing connection", 0.0) == "idle"  # Exim
    assert kind("4.7.0 Try again later", 30.0) == "idle"
    assert kind("4.7.0 Try again later", 0.1) == "throttle"
    assert refusal(WHERE, 421, "timeout", "DATA", idle=30.0).kind == "throttle"


@pytest.mark.parametrize(
    ("code", "step", "kind"),
    [(421, "greeting", "throttle"), (554, "greeting", "config"), (454, "AUTH", "down"),
     (535, "AUTH", "config"), (450, "EHLO", "down"), (502, "HELO", "config")],
)  # fmt: skip
def test_set_up_refusals(code: int, step: str, kind: Kind) -> None:
    assert setup_refusal(WHERE, code, b"multi\n line", step).kind == kind


def test_failures_without_a_reply() -> None:
    timing = {"deadline": 60.0, "timeout": 30.0}
    refusal_error = ConnectionRefusedError(111, "Connection refused")
    refused = setup_error(WHERE, refusal_error, expired=False, **timing)
    assert (refused.kind, str(refused)) == ("down", f"{WHERE}: Connection refused (connecting)")
    silent = setup_error(WHERE, TimeoutError(), expired=False, **timing)
    assert silent.kind == "down" and "no answer within 30s" in str(silent)
    trickled = setup_error(WHERE, OSError(), expired=True, **timing)
    assert "no complete answer within the 60s deadline" in str(trickled)
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "unable to get local issuer certificate"  # as ssl sets it
    refused_cert = setup_error(WHERE, untrusted, expired=False, **timing)
    assert refused_cert.kind == "config" and "local issuer" in str(refused_cert)
    try:
        try:
            raise TimeoutError
        except TimeoutError:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed: timed out")  # noqa: B904 - smtplib's own chaining
    except smtplib.SMTPServerDisconnected as exc:
        timed = lost(WHERE, exc, "DATA", expired=False, reused=True, **timing)
    assert (timed.kind, str(timed)) == ("lost", f"{WHERE}: timed out after 30s (DATA)")
    assert timed.silent
    closed = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    assert lost(WHERE, closed, "MAIL FROM", expired=False, reused=True, **timing).kind == "idle"
    assert lost(WHERE, closed, "MAIL FROM", expired=False, reused=False, **timing).kind == "lost"
    dropped = lost(WHERE, closed, "DATA", expired=False, reused=True, **timing)
    assert dropped.kind == "lost" and not dropped.silent
