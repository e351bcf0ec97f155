"""``digest run`` end to end against a real SMTP server on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlmodel import col
from typer.testing import CliRunner

from digest.cli import app
from digest.config.resources import sample_dir
from digest.config.settings import Settings
from digest.delivery.message import message_id_for
from digest.digests.claims import CLAIM_TTL, ClaimantLease
from digest.ranking import get_ranker
from digest.render.assemble import render_preview
from digest.render.feed_export import export_feeds
from digest.runner import build_due_digests, run_digests
from digest.sources.imports import import_files
from digest.store import db
from digest.store.models import Claimant, Digest, DigestItem, Subscriber
from digest.store.papers import upsert_records
from digest.store.records import PaperRecord
from digest.subscribers.library import ProfileSpec, SubscriberFields, add_subscriber
from digest.testing.smtp import SmtpSink

IMPORTED = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # a Monday
RUN_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with SmtpSink() as server:
        yield server


@pytest.fixture
def smtp_settings(backend: str, make_settings: Callable[..., Settings], sink: SmtpSink) -> Settings:
    settings = make_settings(
        delivery="smtp",
        smtp_host=sink.host,
        smtp_port=sink.port,
        smtp_retries=1,
        smtp_connections=1,  # messages in the run's order, on one connection (asserted)
        bounce_address="bounces@digest.example.org",
        unsubscribe_mailto="unsubscribe@digest.example.org",
    )
    import_files(settings, sorted(sample_dir().glob("*.txt.gz")), now=IMPORTED)
    return settings


def add(
    settings: Settings,
    email: str,
    keywords: list[str],
    *,
    created: datetime = IMPORTED - timedelta(days=1),
    **fields: object,
) -> None:
    with db.transaction(settings) as session:
        add_subscriber(
            session,
            email=email,
            profile=ProfileSpec(keywords=keywords),
            fields=SubscriberFields(
                **{"frequency": "daily", "hour": 7, "timezone": "UTC", **fields}
            ),  # type: ignore[arg-type]  # a deliberately loose test input
            settings=settings,
            now=created,
        )


def messages_to(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [m.message for m in sink.messages if address in m.rcpt_tos]


def test_run_sends_standard_messages_once(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    add(settings, "ada@example.org", ["reinforcement learning", "robot"], name="Ada Lovelace")
    add(settings, "grace@example.org", ["pretraining data", "language model"], max_items=5)
    add(settings, "rosalind@example.org", ["cryo-EM", "X-ray crystallography"])

    report = run_digests(settings, now=RUN_AT)
    assert (report.due, report.sent, report.empty, report.failed) == (3, 2, 1, 0)
    assert len(sink.messages) == 2
    assert sink.connections == 1  # one connection reused for the whole run

    with db.transaction(settings) as session:
        ada = session.execute(
            select(Subscriber).where(Subscriber.email == "ada@example.org")
        ).scalar_one()
        digest = session.execute(select(Digest).where(Digest.subscriber_id == ada.id)).scalar_one()
    (received,) = [m for m in sink.messages if m.rcpt_tos == ("ada@example.org",)]
    assert received.envelope_from == "bounces@digest.example.org"
    message = received.message
    assert message["From"] == "Paper digest <digest@digest.example.org>"
    assert message["To"] == "Ada Lovelace <ada@example.org>"
    assert message["Date"]
    assert message["Message-ID"] == message_id_for(
        f"{ada.id}:{digest.period_key}", "digest.example.org"
    )
    assert message["List-Id"] == "Paper digest <digest.digest.example.org>"
    unsubscribe = f"https://digest.example.org/unsubscribe/{ada.token}"
    assert (
        message["List-Unsubscribe"] == f"<{unsubscribe}>, <mailto:unsubscribe@digest.example.org>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    raw_headers = received.raw.split(b"\r\n\r\n", 1)[0].decode()
    assert f"List-Unsubscribe: <{unsubscribe}>" in raw_headers  # not RFC 2047 encoded or folded
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    text, html = (p.get_content() for p in parts)
    assert unsubscribe in text and f"https://digest.example.org/manage/{ada.token}" in text
    assert f'href="{unsubscribe}"' in html
    assert "matched" in text  # every pick says why
    subject = message["Subject"]
    assert str(digest.item_count) in subject

    grace = messages_to(sink, "grace@example.org")
    assert len(grace) == 1
    assert "rosalind@example.org" not in {r for m in sink.messages for r in m.rcpt_tos}

    # A second run, now or later in the same period, sends nothing more.
    assert run_digests(settings, now=RUN_AT).sent == 0
    again = run_digests(settings, now=RUN_AT + timedelta(hours=10))
    assert (again.due, again.sent) == (0, 0)
    assert len(sink.messages) == 2

    with db.transaction(settings) as session:
        items = session.execute(select(func.count()).select_from(DigestItem)).scalar_one()
        assert items == sum(d.items for d in report.digests)


def test_next_period_sends_only_new_papers(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    add(settings, "ada@example.org", ["reinforcement learning"])
    run_digests(settings, now=RUN_AT)
    first = messages_to(sink, "ada@example.org")[0]
    assert first
    with db.transaction(settings) as session:
        upsert_records(
            session,
            [
                PaperRecord(
                    title="Offline reinforcement learning with diffusion world models",
                    abstract="We study reinforcement learning from offline data.",
                    arxiv_id="2611.01234",
                )
            ],
            source="arxiv",
            now=RUN_AT + timedelta(hours=3),
        )
    # The same sample, re-imported under another source name, announces nothing again.
    import_files(
        settings,
        sorted(sample_dir().glob("*.txt.gz")),
        now=RUN_AT + timedelta(hours=4),
        source="mirror",
    )
    report = run_digests(settings, now=RUN_AT + timedelta(days=1))
    assert (report.due, report.sent) == (1, 1)
    second = messages_to(sink, "ada@example.org")[1]
    html = second.get_body(("html",)).get_content()  # type: ignore[union-attr]  # present here, or the test fails on None
    assert "Offline reinforcement learning with diffusion world models" in html
    assert second["Subject"].startswith("Paper digest: 1 new paper")
    assert second["Message-ID"] != first["Message-ID"]


def test_transient_failure_is_retried_next_run(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    add(settings, "ada@example.org", ["reinforcement learning"])
    sink.fail_next(451, times=2, stage="rcpt")  # first try + 1 retry
    report = run_digests(settings, now=RUN_AT)
    assert (report.sent, report.failed) == (0, 1)
    with db.transaction(settings) as session:
        digest = session.execute(select(Digest)).scalar_one()
        assert digest.status == "failed" and digest.next_attempt_at is not None
        assert "451" in (digest.last_error or "")
        retry_at = digest.next_attempt_at
    assert run_digests(settings, now=RUN_AT + timedelta(minutes=1)).sent == 0  # backing off
    report = run_digests(settings, now=retry_at)
    assert (report.sent, report.failed) == (1, 0)
    assert len(sink.messages) == 1
    assert run_digests(settings, now=retry_at + timedelta(hours=1)).sent == 0


def test_permanent_failure_flags_address(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    add(settings, "ada@example.org", ["reinforcement learning"])
    add(settings, "grace@example.org", ["pretraining data"])
    sink.fail_next(550, times=1, stage="rcpt")
    report = run_digests(settings, now=RUN_AT)
    assert (report.sent, report.failed) == (1, 1)
    with db.transaction(settings) as session:
        bounced = session.execute(
            select(Subscriber).where(Subscriber.bounce_count == 1)
        ).scalar_one()
        digest = session.execute(
            select(Digest).where(Digest.subscriber_id == bounced.id)
        ).scalar_one()
        assert digest.status == "failed" and digest.next_attempt_at is None
        assert bounced.last_bounce and "550" in bounced.last_bounce
    assert run_digests(settings, now=RUN_AT + timedelta(days=2)).failed == 0  # never retried


def test_repeated_hard_bounces_stop_sending(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings.model_copy(update={"bounce_limit": 2})
    add(settings, "ada@example.org", ["reinforcement learning"])
    for day in range(2):
        sink.fail_next(550, times=1, stage="rcpt")
        with db.transaction(settings) as session:  # something new each day
            upsert_records(
                session,
                [
                    PaperRecord(
                        title=f"Reinforcement learning day {day}", abstract="reinforcement learning"
                    )
                ],
                source="t",
                now=RUN_AT + timedelta(days=day),
            )
        assert run_digests(settings, now=RUN_AT + timedelta(days=day, hours=1)).failed == 1
    report = run_digests(settings, now=RUN_AT + timedelta(days=3))
    assert report.due == 0 and not sink.messages


def test_crash_after_recording_is_delivered_by_next_run(
    smtp_settings: Settings, sink: SmtpSink
) -> None:
    settings = smtp_settings
    add(settings, "ada@example.org", ["reinforcement learning"])
    engine = db.get_engine(settings)
    due, _, _ = build_due_digests(engine, settings=settings, now=RUN_AT, ranker=get_ranker())
    assert due == 1 and not sink.messages  # "crash": recorded, nothing sent
    report = run_digests(settings, now=RUN_AT + timedelta(minutes=5))
    assert (report.due, report.sent) == (0, 1)
    with db.transaction(settings) as session:
        assert session.execute(select(func.count()).select_from(Digest)).scalar_one() == 1


def test_crash_while_sending_resends_same_message_id(
    smtp_settings: Settings, sink: SmtpSink
) -> None:
    settings = smtp_settings
    add(settings, "ada@example.org", ["reinforcement learning"])
    run_digests(settings, now=RUN_AT)
    first_id = sink.messages[0].message["Message-ID"]
    engine = db.get_engine(settings)
    # Another process claims it again and "hands it over"; while that claimant lives, its
    # claim holds, however late the clock says it is.
    with ClaimantLease(engine, kind="run") as other:
        with db.transaction(settings) as session:
            session.execute(
                update(Digest).values(status="sending", sent_at=None, claimed_by=other.id)
            )
        assert run_digests(settings, now=RUN_AT + timedelta(hours=1)).sent == 0
        # ... and then it dies without a word: its heartbeat stops, nothing marks it ended.
        with db.transaction(settings) as session:
            session.execute(
                update(Claimant)
                .where(col(Claimant.id) == other.id)
                .values(heartbeat_at=datetime.now(UTC) - CLAIM_TTL - timedelta(seconds=1))
            )
        other._stop.set()  # no more beats (the lease's own exit below ends it anyway)
        report = run_digests(settings, now=RUN_AT + timedelta(hours=1))
    assert report.sent == 1
    assert sink.messages[1].message["Message-ID"] == first_id


def test_subscriber_option_builds_now(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    # Subscribed after yesterday's 23:00, so no period was missed either.
    add(settings, "ada@example.org", ["reinforcement learning"], hour=23, created=IMPORTED)
    assert run_digests(settings, now=RUN_AT).due == 0  # 23:00 has not come yet
    report = run_digests(settings, now=RUN_AT, subscriber_email="ada@example.org")
    assert (report.due, report.sent) == (1, 1)
    assert run_digests(settings, now=RUN_AT, subscriber_email="ada@example.org").sent == 0


def test_preview_records_and_sends_nothing(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    add(settings, "ada@example.org", ["reinforcement learning"])
    view, _ = render_preview(settings, "ada@example.org", now=RUN_AT)
    assert view.items and all(item.reason for item in view.items)
    with db.transaction(settings) as session:
        assert session.execute(select(func.count()).select_from(Digest)).scalar_one() == 0
    assert not sink.messages
    report = run_digests(settings, now=RUN_AT)
    assert report.digests[0].items == len(view.items)


def test_send_empty_note(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings.model_copy(update={"send_empty": True})
    add(settings, "rosalind@example.org", ["cryo-EM", "X-ray crystallography"])
    report = run_digests(settings, now=RUN_AT)
    assert report.sent == 1
    assert "nothing new" in sink.messages[0].message["Subject"].lower()


def test_feeds_written_after_run(smtp_settings: Settings, sink: SmtpSink) -> None:
    settings = smtp_settings
    add(settings, "ada@example.org", ["reinforcement learning"])
    report = run_digests(settings, now=RUN_AT)
    feeds = settings.data_dir / "feeds"

    def write() -> str:
        export_feeds(settings, feeds)
        with db.transaction(settings) as session:
            return str(session.execute(select(Subscriber.token)).scalar_one())

    token = write()
    atom = (feeds / f"{token}.atom").read_bytes()
    json_feed = json.loads((feeds / f"{token}.json").read_bytes())
    assert len(json_feed["items"]) == report.digests[0].items
    assert (feeds / f"{token}.rss").read_bytes().startswith(b"<?xml")
    run_digests(settings, now=RUN_AT + timedelta(hours=1), subscriber_email="ada@example.org")
    write()
    assert (feeds / f"{token}.atom").read_bytes() == atom  # nothing new: identical bytes


def test_run_cli_json(
    smtp_settings: Settings, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = smtp_settings
    add(settings, "ada@example.org", ["reinforcement learning"])
    for name, value in {
        "DIGEST_DATA_DIR": str(settings.data_dir),
        "DIGEST_DELIVERY": "smtp",
        "DIGEST_SMTP_HOST": sink.host,
        "DIGEST_SMTP_PORT": str(sink.port),
        "DIGEST_MAIL_FROM": "Paper digest <digest@digest.example.org>",
        "DIGEST_BASE_URL": settings.base_url,
    }.items():
        monkeypatch.setenv(name, value)
    if settings.database_url:
        monkeypatch.setenv("DIGEST_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    result = runner.invoke(app, ["run", "--now", RUN_AT.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {k: data[k] for k in ("due", "sent", "empty", "failed")} == {
        "due": 1,
        "sent": 1,
        "empty": 0,
        "failed": 0,
    }
    result = runner.invoke(app, ["run", "--now", RUN_AT.isoformat(), "--json"])
    assert json.loads(result.stdout)["sent"] == 0
    feed = runner.invoke(app, ["feed", "ada@example.org", "--format", "rss"])
    assert feed.exit_code == 0 and "<rss" in feed.stdout
    preview = runner.invoke(app, ["preview", "ada@example.org", "--json"])
    assert preview.exit_code == 0, preview.output
    assert json.loads(preview.stdout)["email"] == "ada@example.org"
    html = tmp_path / "preview.html"
    # Everything was sent: nothing new, and no note goes out unless DIGEST_SEND_EMPTY.
    quiet = runner.invoke(app, ["preview", "ada@example.org", "--html", str(html)])
    assert quiet.exit_code == 0 and "no email would be sent" in quiet.output
    assert not html.exists()
    monkeypatch.setenv("DIGEST_SEND_EMPTY", "true")
    assert runner.invoke(app, ["preview", "ada@example.org", "--html", str(html)]).exit_code == 0
    assert "<html" in html.read_text()


def test_two_runs_never_send_one_digest_twice(smtp_settings: Settings, sink: SmtpSink) -> None:
    """Concurrent runs (two hosts, or a manual run beside the scheduler) claim each digest once."""
    settings = smtp_settings
    for n in range(6):
        add(settings, f"reader{n}@example.org", ["reinforcement learning"])
    engine = db.get_engine(settings)
    build_due_digests(engine, settings=settings, now=RUN_AT, ranker=get_ranker())
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            run_digests(settings, now=RUN_AT)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    recipients = [r for m in sink.messages for r in m.rcpt_tos]
    assert sorted(recipients) == sorted(f"reader{n}@example.org" for n in range(6))
    with db.transaction(settings) as session:
        attempts = session.execute(select(Digest.attempts)).scalars().all()
    assert attempts == [1] * 6


def test_queries_by_many_subscribers_go_in_chunks(
    smtp_settings: Settings, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subscriber ids are asked for in chunks (``IN`` lists are bounded by the database's
    bind-parameter limit: 100,000 subscribers would not fit); with chunks of 2 the run finds
    the same due digests, the ledger across chunks, and sends each digest once."""
    settings = smtp_settings
    monkeypatch.setattr(db, "IN_CHUNK", 2)  # a size knob, not the logic
    for n in range(5):
        add(settings, f"r{n}@example.org", ["reinforcement learning", "robot"])
    add(settings, "rosalind@example.org", ["cryo-EM"])
    report = run_digests(settings, now=RUN_AT)
    assert (report.due, report.sent, report.empty, report.failed) == (6, 5, 1, 0)
    assert len(sink.messages) == 5
    # The next day: every subscriber is due again; what was delivered is not picked again.
    later = run_digests(settings, now=RUN_AT + timedelta(days=1))
    assert later.due == 6
    with db.transaction(settings) as session:
        pairs = session.execute(select(DigestItem.subscriber_id, DigestItem.paper_id)).all()
    assert len(pairs) == len(set(pairs))  # never the same paper twice to anyone
    # Rerunning the same day finds the existing digests in every chunk: nothing new.
    again = run_digests(settings, now=RUN_AT + timedelta(days=1))
    assert again.due == 0 and again.sent == 0
