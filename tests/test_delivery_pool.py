"""SmtpPool against real servers on loopback: a faulty aiosmtpd sink and broken relays.

Every test is bounded in time by short timeouts and deadlines; none asserts a speed (the
ceiling benchmark is bench/smtp_ceiling.py).
"""

from __future__ import annotations

import ssl
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from digest.config.settings import Settings
from digest.delivery import SmtpPool
from digest.delivery.base import Outcome, Outgoing, Sender
from digest.errors import ConfigError, DeliveryError, TransientDeliveryError
from digest.testing.faults import FaultySink, Refusal
from digest.testing.relays import BrokenRelay, RelayMode
from digest.testing.smtp import SmtpSink
from tests.test_delivery_smtp import tls  # noqa: F401 - the module-scoped TLS fixture, reused

BOUNCE = "bounce@digest.example.org"


def outgoing(n: int, *, size: int = 2_000, recipient: str | None = None) -> Outgoing:
    to = recipient or f"reader{n}@example.com"
    head = f"From: digest@digest.example.org\r\nTo: {to}\r\nSubject: Papers {n}\r\n"
    message_id = f"<pool-{n}@digest.example.org>"
    head += f"Message-ID: {message_id}\r\n\r\n"
    line = f"paper {n} ".ljust(70, "x").encode() + b"\r\n"
    return Outgoing(n, head.encode() + line * max(1, size // len(line)), BOUNCE, to, message_id)


def pool_for(server: Any, **options: Any) -> SmtpPool:
    defaults: dict[str, Any] = {
        "retry_wait": 0.01,
        "timeout": 2.0,
        "transaction_deadline": 5.0,
        "local_hostname": "client.test",
    }
    return SmtpPool(host=server.host, port=server.port, **(defaults | options))


def send(pool: SmtpPool, messages: list[Outgoing]) -> list[Outcome]:
    with pool:
        return list(pool.send_all(messages))


def by_status(outcomes: list[Outcome]) -> dict[str, set[int]]:
    statuses: dict[str, set[int]] = {}
    for outcome in outcomes:
        statuses.setdefault(outcome.status, set()).add(outcome.key)
    return statuses


def received_keys(sink: SmtpSink) -> Counter[int]:
    """How many times each message (by its key in the Message-ID) reached the sink."""
    ids = (str(m.message["Message-ID"]) for m in sink.messages)
    return Counter(int(i.removeprefix("<pool-").split("@")[0]) for i in ids)


def assert_one_outcome_each(outcomes: list[Outcome], count: int) -> None:
    assert sorted(o.key for o in outcomes) == list(range(count))


@pytest.fixture
def sink() -> Iterator[FaultySink]:
    with FaultySink() as running:
        yield running


# The normal case ------------------------------------------------------------------------


def test_every_message_is_sent_once_over_reused_connections(sink: FaultySink) -> None:
    messages = [outgoing(n) for n in range(300)]
    pool = pool_for(sink, connections=4)
    outcomes = send(pool, messages)
    assert_one_outcome_each(outcomes, 300)
    assert {(o.status, o.code, o.error) for o in outcomes} == {("sent", 250, None)}
    assert Counter(m.raw for m in sink.messages) == Counter(m.data for m in messages)
    assert {m.envelope_from for m in sink.messages} == {BOUNCE}
    assert sink.connections == pool.stats.connections_opened <= 4  # EHLO once per connection
    assert pool.stats.attempts == 300 and pool.failure is None


def test_outcomes_stream_while_messages_are_still_coming(sink: FaultySink) -> None:
    with pool_for(sink, connections=2) as pool:
        for n in range(3):
            pool.submit(outgoing(n))
            got: list[Outcome] = []
            until = time.monotonic() + 5
            while not got and time.monotonic() < until:
                got = pool.collect()
                time.sleep(0.005)
            assert [o.key for o in got] == [n]  # answered before the next is submitted
        pool.submit(outgoing(3))
        pool.finish()
        assert [o.key for o in pool.outcomes()] == [3]
        assert list(pool.outcomes()) == []
        with pytest.raises(RuntimeError, match="after finish"):
            pool.submit(outgoing(4))
    with pytest.raises(RuntimeError, match="not open"):
        pool.submit(outgoing(4))
    with pytest.raises(RuntimeError, match="make a new one"):
        pool.open()


def test_submit_and_collect_as_the_delivery_pipeline_uses_them(sink: FaultySink) -> None:
    sender: Sender = pool_for(sink, connections=3)
    got: list[Outcome] = []
    with sender:
        for batch in range(3):  # batches of 50, outcomes collected along the way
            for n in range(batch * 50, batch * 50 + 50):
                sender.submit(outgoing(n))
                got.extend(sender.collect())  # never waits
            got.extend(sender.collect(wait=True))  # every one submitted so far
            assert sorted(o.key for o in got) == list(range(batch * 50 + 50))
        assert sender.collect(wait=True) == []
    assert by_status(got) == {"sent": set(range(150))}
    assert received_keys(sink) == Counter(range(150))


def test_a_connection_dropped_mid_data_is_retried_and_sent_once(sink: FaultySink) -> None:
    sink.drop_during_data()
    pool = pool_for(sink, connections=3, retry_wait=10.0)
    start = time.monotonic()
    outcomes = send(pool, [outgoing(n) for n in range(40)])
    assert time.monotonic() - start < 5.0  # the first retry after a drop does not wait
    assert by_status(outcomes) == {"sent": set(range(40))}
    assert received_keys(sink) == Counter(range(40))
    assert sink.refusals == [Refusal("data", "(dropped)")]
    assert pool.stats.retries == 1 and pool.stats.attempts == 41


def test_a_relay_restarting_mid_run_defers_nothing(sink: FaultySink) -> None:
    outcomes: list[Outcome] = []
    with pool_for(sink, connections=4) as pool:
        for outcome in pool.send_all(outgoing(n) for n in range(400)):
            outcomes.append(outcome)
            if len(outcomes) == 100:
                sink.drop_connections()  # every connection at once, transactions in flight
    assert by_status(outcomes) == {"sent": set(range(400))} and pool.failure is None
    assert pool.stats.connections_opened > 4  # the rest went over new connections
    keys = received_keys(sink)
    # Only a message whose 250 was lost with its connection can arrive twice.
    assert set(keys) == set(range(400)) and sum(keys.values()) - 400 <= 4


def test_an_idle_connection_closed_by_the_relay_reconnects_without_a_retry(
    sink: FaultySink,
) -> None:
    with pool_for(sink, connections=1) as pool:
        pool.submit(outgoing(0))
        until = time.monotonic() + 5
        while not pool.collect() and time.monotonic() < until:
            time.sleep(0.005)
        sink.drop_connections()  # as the relay's idle timeout would
        pool.submit(outgoing(1))
        pool.finish()
        assert [o.status for o in pool.outcomes()] == ["sent"]
    assert received_keys(sink) == Counter([0, 1])
    assert pool.stats.retries == 0 and pool.stats.connections_opened == 2


def test_a_421_for_an_idle_timeout_reconnects_without_slowing_down(sink: FaultySink) -> None:
    with pool_for(sink, connections=1) as pool:
        pool.submit(outgoing(0))
        until = time.monotonic() + 5
        while not pool.collect() and time.monotonic() < until:
            time.sleep(0.005)
        # Postfix's answer to the first command after its idle timeout closed the session.
        sink.fail_next(421, stage="mail", text="4.4.2 relay.test Error: timeout exceeded")
        pool.submit(outgoing(1))
        pool.finish()
        assert [o.status for o in pool.outcomes()] == ["sent"]
    assert received_keys(sink) == Counter([0, 1])
    assert pool.stats.throttles == pool.stats.retries == 0
    assert pool.stats.connections_opened == 2


# Refusals of one message ----------------------------------------------------------------


def test_550_for_one_recipient_does_not_stop_the_others(sink: FaultySink) -> None:
    sink.refuse_recipient("reader5@example.com")
    sink.refuse_recipient("reader9@example.com", "450 4.2.1 Mailbox busy (SmtpSink)", times=2)
    pool = pool_for(sink, connections=2)
    outcomes = send(pool, [outgoing(n) for n in range(30)])
    refused = next(o for o in outcomes if o.key == 5)
    assert (refused.status, refused.code, refused.bounce) == ("permanent", 550, True)
    assert "550 5.1.1 No such user (SmtpSink) (RCPT TO)" in str(refused.error)
    assert by_status(outcomes)["sent"] == set(range(30)) - {5}
    assert received_keys(sink) == Counter(set(range(30)) - {5})  # 9 after two 450s, once
    assert sink.connections <= 2  # RSET kept the connections usable


def test_a_4xx_that_persists_becomes_transient_after_the_retries(sink: FaultySink) -> None:
    sink.refuse_recipient("reader1@example.com", "451 4.3.0 Try later (SmtpSink)")
    pool = pool_for(sink, connections=1, retries=2)
    outcomes = send(pool, [outgoing(n) for n in range(3)])
    failed = next(o for o in outcomes if o.key == 1)
    assert (failed.status, failed.code, failed.bounce) == ("transient", 451, False)
    assert "(RCPT TO) (gave up after 3 attempts)" in str(failed.error)
    assert received_keys(sink) == Counter([0, 2]) and pool.failure is None


def test_552_at_mail_from_for_5_percent_fails_only_those() -> None:
    with FaultySink(mail_refusal_percent=5) as faulty:
        pool = pool_for(faulty, connections=4)
        outcomes = send(pool, [outgoing(n) for n in range(400)])
        refused = [o for o in outcomes if o.status == "permanent"]
        assert len(refused) == 20 == len(faulty.refusals)
        assert {(o.code, o.bounce) for o in refused} == {(552, False)}  # not the address
        assert all(str(o.error).endswith("(MAIL FROM)") for o in refused)
        sent = by_status(outcomes)["sent"]
        assert len(sent) == 380 and received_keys(faulty) == Counter(sent)
        assert pool.stats.connections_opened <= 4 and pool.failure is None


def test_a_message_over_the_advertised_size_is_not_attempted() -> None:
    with FaultySink(size_limit=10_000) as faulty:
        messages = [outgoing(n, size=20_000 if n % 3 == 0 else 2_000) for n in range(12)]
        outcomes = send(pool_for(faulty, connections=2), messages)
        big = {o.key: o for o in outcomes if o.status == "permanent"}
        assert set(big) == {0, 3, 6, 9}
        assert {(o.code, o.bounce) for o in big.values()} == {(None, False)}
        assert "over the relay's limit of 10,000 (EHLO SIZE); not attempted" in str(big[0].error)
        assert received_keys(faulty) == Counter(set(range(12)) - set(big))
        assert faulty.refusals == []  # never refused by the server: never offered to it


@pytest.mark.parametrize("smtputf8", [True, False])
def test_a_non_ascii_address_needs_smtputf8(smtputf8: bool) -> None:
    messages = [outgoing(0), outgoing(1, recipient="léa@example.com"), outgoing(2)]
    with FaultySink(smtputf8=smtputf8) as faulty:
        outcomes = send(pool_for(faulty, connections=1), messages)
        if smtputf8:
            assert by_status(outcomes) == {"sent": {0, 1, 2}}
            assert faulty.messages[1].rcpt_tos == ("léa@example.com",)
            return
        refused = next(o for o in outcomes if o.key == 1)
        assert (refused.status, refused.bounce) == ("permanent", False)
        assert "lacks SMTPUTF8" in str(refused.error)
        assert received_keys(faulty) == Counter([0, 2])


# A relay that asks for less -------------------------------------------------------------


def test_421_too_many_connections_shrinks_the_pool_and_it_finishes() -> None:
    with FaultySink(max_connections=2) as faulty:
        pool = pool_for(faulty, connections=4)
        outcomes = send(pool, [outgoing(n) for n in range(200)])
        assert by_status(outcomes) == {"sent": set(range(200))}
        assert received_keys(faulty) == Counter(range(200))
        refusals = [r for r in faulty.refusals if r.stage == "connect"]
        assert len(refusals) == pool.stats.throttles == 2  # the refused two stayed parked
        assert pool.stats.connections_opened == 2 and pool.failure is None


def test_connections_come_back_after_the_relay_stops_refusing_them() -> None:
    with FaultySink(max_connections=1) as faulty:
        pool = pool_for(faulty, connections=3, throttle_recovery=0.05)
        with pool:
            outcomes = pool.send_all([outgoing(n, size=500) for n in range(1500)])
            for n, _ in enumerate(outcomes):
                if n == 20:
                    faulty.set_max_connections(None)  # the relay's limit is lifted
        # One more connection per 0.05 s of success: both are back long before the end.
        assert received_keys(faulty) == Counter(range(1500))
        assert {r.stage for r in faulty.refusals} == {"connect"}
        assert pool.stats.connections_opened == 3  # the parked two came back
        assert faulty.peak_connections == 3


def test_421_slow_down_within_a_session_pauses_the_pool(sink: FaultySink) -> None:
    sink.fail_next(421, times=2, stage="mail", text="4.7.0 Slow down, too many messages")
    pool = pool_for(sink, connections=2, retry_wait=0.2)
    start = time.monotonic()
    outcomes = send(pool, [outgoing(n) for n in range(20)])
    assert by_status(outcomes) == {"sent": set(range(20))}
    assert received_keys(sink) == Counter(range(20))
    assert pool.stats.throttles == 2 and pool.stats.retries == 0  # a 421 costs no attempt
    assert time.monotonic() - start >= 0.2  # everyone paused at least the first backoff
    assert sink.connections >= 3  # a 421 closes the connection; another was opened


# A relay that is down or hostile --------------------------------------------------------


@pytest.mark.parametrize("connections", [1, 4])
def test_refused_connections_stop_the_pool_within_seconds(connections: int) -> None:
    with BrokenRelay("refuse") as relay:
        pool = pool_for(relay, connections=connections, retry_wait=0.3)
        start = time.monotonic()
        outcomes = send(pool, [outgoing(n) for n in range(500)])
        assert time.monotonic() - start < 4.0
    assert_one_outcome_each(outcomes, 500)
    assert by_status(outcomes) == {"deferred": set(range(500))}
    assert isinstance(pool.failure, TransientDeliveryError)
    assert "Connection refused" in str(pool.failure)
    assert "relay unreachable" in str(outcomes[-1].error)


def test_a_silent_relay_is_given_up_after_the_socket_timeout() -> None:
    with BrokenRelay("silent") as relay:
        pool = pool_for(relay, connections=4, timeout=0.5)
        start = time.monotonic()
        outcomes = send(pool, [outgoing(n) for n in range(100)])
        assert time.monotonic() - start < 3.0
        assert relay.connections == 4  # one try per connection, then the breaker
    assert by_status(outcomes) == {"deferred": set(range(100))}
    assert "no answer within 0.5s" in str(pool.failure)


@pytest.mark.parametrize("mode", ["trickle-greeting", "trickle-ehlo", "trickle-data"])
def test_a_trickling_relay_is_bounded_by_the_transaction_deadline(mode: RelayMode) -> None:
    with BrokenRelay(mode, interval=0.02) as relay:
        # Bytes arrive every 20 ms, so a 5 s socket timeout never fires: only the deadline.
        pool = pool_for(relay, connections=2, timeout=5.0, transaction_deadline=0.8)
        start = time.monotonic()
        outcomes = send(pool, [outgoing(n) for n in range(50)])
        assert time.monotonic() - start < 4.0
    assert by_status(outcomes) == {"deferred": set(range(50))}
    assert isinstance(pool.failure, TransientDeliveryError)
    assert "within the 0.8s" in str(pool.failure) and "deadline" in str(pool.failure)


def test_a_tls_handshake_failure_counts_as_the_relay_being_down(sink: FaultySink) -> None:
    pool = pool_for(sink, connections=2, security="ssl")  # the sink speaks plain SMTP
    outcomes = send(pool, [outgoing(n) for n in range(10)])
    assert by_status(outcomes) == {"deferred": set(range(10))}
    assert isinstance(pool.failure, TransientDeliveryError)
    assert "TLS handshake failed" in str(pool.failure)
    assert sink.messages == []


# Configuration problems stop the pool ---------------------------------------------------


def test_refused_authentication_stops_the_pool_as_a_configuration_error() -> None:
    with SmtpSink(auth_users={"digest": "right"}) as auth_sink:
        pool = pool_for(auth_sink, connections=2, username="digest", password="wrong")
        outcomes = send(pool, [outgoing(n) for n in range(20)])
        assert auth_sink.connections <= 2  # a wrong password is not retried
    assert by_status(outcomes) == {"deferred": set(range(20))}
    failure = pool.failure
    assert type(failure) is DeliveryError and "535" in str(failure)


def test_a_refused_sender_stops_the_pool_instead_of_failing_every_message(
    sink: FaultySink,
) -> None:
    sink.fail_next(553, times=100, stage="mail", text="5.7.1 Sender address rejected")
    outcomes = send(pool := pool_for(sink, connections=2), [outgoing(n) for n in range(20)])
    assert by_status(outcomes) == {"deferred": set(range(20))}
    assert type(pool.failure) is DeliveryError and "553" in str(pool.failure)


def test_an_untrusted_certificate_is_a_configuration_error(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],  # noqa: F811 - the imported fixture
) -> None:
    server, _ = tls
    with SmtpSink(ssl_context=server) as tls_sink:
        pool = pool_for(tls_sink, security="ssl", ssl_context=ssl.create_default_context())
        outcomes = send(pool, [outgoing(n) for n in range(5)])
    assert by_status(outcomes) == {"deferred": set(range(5))}
    assert type(pool.failure) is DeliveryError and "certificate" in str(pool.failure)


# Security options -----------------------------------------------------------------------


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_auth_are_set_up_once_per_connection(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],  # noqa: F811 - the imported fixture
    security: str,
) -> None:
    server, client = tls
    kwargs: dict[str, Any] = {"auth_users": {"digest": "secret"}}
    if security == "starttls":
        kwargs |= {"tls_context": server, "require_starttls": True}
    else:
        kwargs |= {"ssl_context": server}
    with SmtpSink(**kwargs) as tls_sink:
        pool = pool_for(
            tls_sink,
            connections=2,
            security=security,
            ssl_context=client,
            username="digest",
            password="secret",
        )
        outcomes = send(pool, [outgoing(n) for n in range(20)])
        assert by_status(outcomes) == {"sent": set(range(20))}
        assert len(tls_sink.auth_attempts) == tls_sink.connections <= 2


# Rate limits ----------------------------------------------------------------------------


def test_the_rate_per_second_holds_at_the_sink(sink: FaultySink) -> None:
    pool = pool_for(sink, connections=4, rate_per_second=20)
    start = time.monotonic()
    outcomes = send(pool, [outgoing(n) for n in range(50)])
    assert by_status(outcomes) == {"sent": set(range(50))}
    assert time.monotonic() - start >= 2.0  # 20 at once, 20 a second later, 10 after that
    accepted = sink.accepted_at
    # A message reaches the sink a little after its send slot, by a few ms or, on a busy
    # machine, a lot more (the sink shares this process): any half second holds <= 20,
    # where 50 unlimited messages arrive within some 30 ms. The exact sliding window is
    # checked with a fake clock in test_delivery_control.py.
    for i, at in enumerate(accepted):
        assert sum(1 for t in accepted[i:] if t - at < 0.5) <= 20


def test_an_hourly_quota_used_up_defers_the_rest(sink: FaultySink) -> None:
    pool = pool_for(sink, connections=2, rate_per_hour=10, sent_before=[60.0, 120.0, 4000.0])
    outcomes = send(pool, [outgoing(n) for n in range(15)])
    sent, deferred = by_status(outcomes)["sent"], by_status(outcomes)["deferred"]
    assert len(sent) == 8 and len(deferred) == 7  # two of the hour's ten were used before
    assert received_keys(sink) == Counter(sent)
    assert {o.error for o in outcomes if o.status == "deferred"} == {
        "rate limit: this window's quota is used"
    }
    assert pool.failure is None


# Stopping and feeding -------------------------------------------------------------------


def test_stop_defers_what_is_queued(sink: FaultySink) -> None:
    with pool_for(sink, connections=2, rate_per_second=5, queue_size=50) as pool:
        for n in range(50):
            pool.submit(outgoing(n))
        first = next(pool.outcomes())
        start = time.monotonic()
        pool.stop()
        pool.finish()
        rest = list(pool.outcomes())
    assert time.monotonic() - start < 2.0
    assert_one_outcome_each([first, *rest], 50)
    sent = by_status([first, *rest])["sent"]
    assert len(by_status(rest)["deferred"]) >= 40 and received_keys(sink) == Counter(sent)
    assert pool.failure is None


def test_an_error_in_the_messages_is_raised_after_their_outcomes(sink: FaultySink) -> None:
    def messages() -> Iterator[Outgoing]:
        yield from (outgoing(n) for n in range(3))
        raise ValueError("rendering failed")

    got: list[Outcome] = []
    with pool_for(sink) as pool, pytest.raises(ValueError, match="rendering failed"):
        got.extend(pool.send_all(messages()))
    assert by_status(got) == {"sent": {0, 1, 2}}


def test_leaving_the_stream_early_stops_the_pool(sink: FaultySink) -> None:
    produced: list[int] = []

    def messages() -> Iterator[Outgoing]:
        for n in range(10_000):
            produced.append(n)
            yield outgoing(n)

    with pool_for(sink, connections=2, queue_size=8) as pool:
        stream = pool.send_all(messages())
        assert next(stream).status == "sent"
        stream.close()
    assert len(produced) < 100  # the feeder stopped taking messages
    assert len(sink.messages) < 100


def test_a_queue_bound_holds_the_producer_back(sink: FaultySink) -> None:
    with pool_for(sink, connections=1, queue_size=2, rate_per_second=20) as pool:
        start = time.monotonic()
        for n in range(30):
            pool.submit(outgoing(n))  # blocks once two are waiting
        submitted_in = time.monotonic() - start
        pool.finish()
        assert len(list(pool.outcomes())) == 30
    assert submitted_in >= 0.5  # it waited for the rate-limited sending


# Settings -------------------------------------------------------------------------------


def test_from_settings() -> None:
    settings = Settings(
        smtp_host="relay.example.org",
        smtp_port=2525,
        smtp_connections=2,
        smtp_rate_per_second=14,
        smtp_rate_per_hour=10_000,
        smtp_transaction_timeout=30,
    )
    pool = SmtpPool.from_settings(settings)
    assert pool.connections == 2
    assert repr(pool) == "SmtpPool(SMTP relay.example.org:2525, connections=2)"
    with pytest.raises(ConfigError, match="smtp_password"):
        SmtpPool.from_settings(Settings(smtp_username="digest"))
