""" "More like this" / "less like this": the links in real emails and feeds, the vote page
(GET shows, POST records), tampering, undo on the manage page, and the next preview."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email import policy
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from sqlmodel import col
from web_fixtures import (  # type: ignore[import-not-found]  # tests/ helpers are plain modules, not a package
    RUN_AT,
    Clock,
    Seeded,
    SettingsFactory,
    csrf_of,
    make_app,
    seed,
    web_client,
)

from digest.config.settings import Settings
from digest.store import db
from digest.store.models import Paper, Subscriber
from digest.store.papers import upsert_records
from digest.store.records import PaperRecord
from digest.subscribers import admin
from digest.subscribers.links import VoteSigner

PROTEIN = "arxiv:2611.00001"  # "Diffusion models for protein design", in the seeded digest
LINK = re.compile(r"(More|Less) like this: (\S+)")


def email_links(settings: Settings) -> dict[str, list[str]]:
    """The feedback links of the digest in the outbox, from its text part."""
    eml = next(settings.resolved_outbox_dir.glob("*.eml")).read_bytes()
    message = email.message_from_bytes(eml, policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]  # a multipart digest has a text part
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]  # and an HTML part
    links: dict[str, list[str]] = {"More": [], "Less": []}
    for kind, url in LINK.findall(text):
        links[kind].append(url)
        assert f'href="{url}"' in html  # the HTML part carries the same links
    return links


def ratings(settings: Settings, address: str = "ada@example.org") -> list[tuple[str, int]]:
    return [(r["key"], r["vote"]) for r in admin.show(settings, address)["ratings"]]


def test_an_email_link_shows_a_page_and_only_its_button_votes(
    backend: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings()
    seed(settings)
    links = email_links(settings)
    assert len(links["More"]) == len(links["Less"]) == 2  # the two diffusion papers
    more = urlsplit(links["More"][0]).path
    assert more.startswith("/feedback/") and more.endswith("/up")
    with web_client(make_app(settings)) as client:
        for _ in range(2):  # a mail scanner's prefetch, then the reader
            page = client.get(more)
            assert page.status_code == 200
            assert "Diffusion models for protein design" in page.text
            assert 'data-testid="feedback-form"' in page.text and ">More like this<" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert ratings(settings) == []  # a GET never votes
        assert client.post(more).status_code == 403  # no CSRF field
        assert client.post(more, data={"csrf_token": "1.forged"}).status_code == 403
        assert ratings(settings) == []
        done = client.post(more, data={"csrf_token": csrf_of(page.text)})
        assert done.status_code == 303 and done.headers["location"] == f"{more}?done"
        assert ratings(settings) == [(PROTEIN, 1)]
        thanks = client.get(done.headers["location"])
        assert 'data-testid="rated"' in thanks.text
        # "Less like this" on the same paper replaces the rating.
        less = urlsplit(links["Less"][0]).path
        page = client.get(less)
        client.post(less, data={"csrf_token": csrf_of(page.text)})
        assert ratings(settings) == [(PROTEIN, -1)]


def test_tampered_and_stale_links_are_refused(backend: str, make_settings: SettingsFactory) -> None:
    settings = make_settings()
    ada = seed(settings)
    more = urlsplit(email_links(settings)["More"][0]).path
    signed = more.split("/")[2]
    payload, _, signature = signed.partition(".")
    other = VoteSigner("another secret key, not the site's").sign(
        ada.subscriber_id, ada.token, PROTEIN
    )
    forged = [
        f"/feedback/{payload}.{signature[:-2]}xx/up",  # signature changed
        f"/feedback/{payload[:-2]}AA.{signature}/up",  # claim changed
        f"/feedback/{other}/up",  # signed with another key
        "/feedback/nonsense/up",
    ]
    with web_client(make_app(settings)) as client:
        page = client.get(more)
        token = csrf_of(page.text)
        for path in forged:
            assert client.get(path).status_code == 404, path
            assert client.post(path, data={"csrf_token": token}).status_code == 404, path
        assert client.get(f"/feedback/{signed}/sideways").status_code == 400
        assert ratings(settings) == []
        # A new token (after a leak) voids the links made for the old one; so does the
        # paper leaving the store.
        with db.transaction(settings) as session:
            subscriber = session.get(Subscriber, ada.subscriber_id)
            assert subscriber is not None
            subscriber.token = "N" * 32
        assert client.get(more).status_code == 404
        with db.transaction(settings) as session:
            subscriber = session.get(Subscriber, ada.subscriber_id)
            assert subscriber is not None
            subscriber.token = ada.token
        assert client.get(more).status_code == 200
        with db.transaction(settings) as session:
            paper = session.execute(select(Paper).where(col(Paper.key) == PROTEIN)).scalar_one()
            session.delete(paper)
        assert client.get(more).status_code == 404


@pytest.mark.parametrize("fmt", ["atom", "json"])
def test_a_feed_entry_link_votes_the_same_way(
    backend: str, make_settings: SettingsFactory, fmt: str
) -> None:
    settings = make_settings()
    ada = seed(settings)
    with web_client(make_app(settings)) as client:
        feed = client.get(f"/feeds/{ada.token}.{fmt}").text
        found = re.findall(r'href=\\?"(https://digest\.example\.org/feedback/[^"\\]+/up)\\?"', feed)
        found += re.findall(
            r"href=&quot;(https://digest\.example\.org/feedback/[^&]+/up)&quot;", feed
        )
        assert found, feed
        path = urlsplit(found[0]).path
        page = client.get(path)
        assert page.status_code == 200 and ratings(settings) == []
        client.post(path, data={"csrf_token": csrf_of(page.text)})
    assert len(ratings(settings)) == 1 and ratings(settings)[0][1] == 1


def test_the_manage_page_lists_ratings_with_undo(
    backend: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings()
    ada = seed(settings)
    admin.feedback(settings, ada.email, PROTEIN, 1, now=RUN_AT)
    with web_client(make_app(settings)) as client:
        page = client.get(f"/manage/{ada.token}")
        listed = page.text.split('data-testid="ratings"')[1].split("</section>")[0]
        assert "More like this:" in listed and "Diffusion models for protein design" in listed
        undo = f"/manage/{ada.token}/ratings"
        assert client.post(undo, data={"key": PROTEIN}).status_code == 403  # no CSRF
        assert ratings(settings) == [(PROTEIN, 1)]
        token = csrf_of(listed)
        gone = client.post(undo, data={"key": PROTEIN, "csrf_token": token})
        assert gone.status_code == 303 and "done=unrated" in gone.headers["location"]
        assert ratings(settings) == []
        after = client.get(gone.headers["location"])
        assert "That rating is undone." in after.text and "None yet." in after.text
        assert client.post(undo, data={"key": "arxiv:0", "csrf_token": token}).status_code == 404
        assert client.post("/manage/" + "A" * 32 + "/ratings", data={}).status_code == 404


LATER = RUN_AT + timedelta(hours=2)
NEW_PAPERS = [
    PaperRecord(
        title="Designing proteins with generative models",
        abstract="We design protein sequences with generative models, then test each design.",
        arxiv_id="2611.00011",
        url="https://arxiv.org/abs/2611.00011",
    ),
    PaperRecord(
        title="Diffusion for weather maps",
        abstract="Diffusion samples plausible weather fields over the globe.",
        arxiv_id="2611.00012",
        url="https://arxiv.org/abs/2611.00012",
    ),
]


def preview_of(client: object, ada: Seeded) -> str:
    page = client.get(f"/manage/{ada.token}/preview")  # type: ignore[attr-defined]  # an httpx.Client
    assert page.status_code == 200
    return str(page.text)


def test_a_vote_changes_the_next_preview_and_exclusions_still_win(
    backend: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings()
    ada = seed(settings)
    bob = seed(settings, email="bob@example.org", keywords=("diffusion", "-protein"))
    with db.transaction(settings) as session:
        upsert_records(session, NEW_PAPERS, source="test", now=LATER)
    with web_client(make_app(settings, Clock(LATER + timedelta(hours=1)))) as client:
        before = preview_of(client, ada)
        assert "Diffusion for weather maps" in before
        assert "Designing proteins with generative models" not in before
        # The preview's items carry the same signed links as the email.
        assert re.search(r'href="https://digest\.example\.org/feedback/[^"/]+/up"', before)
        assert re.search(r'href="https://digest\.example\.org/feedback/[^"/]+/down"', before)
        # Ada asks for more like the protein paper of her last digest, from its email link.
        more = urlsplit(email_links_for(settings, ada.email)["More"][0]).path
        page = client.get(more)
        client.post(more, data={"csrf_token": csrf_of(page.text)})
        after = preview_of(client, ada)
        assert "Designing proteins with generative models" in after
        assert "that you rated up" in after
        assert "Diffusion for weather maps" in after  # her own interest still comes first
        assert after.index("Diffusion for weather maps") < after.index("Designing proteins")
        # Bob excludes proteins: the same vote never brings one to him.
        admin.feedback(settings, bob.email, PROTEIN, 1, now=LATER)
        assert "Designing proteins" not in preview_of(client, bob)


def email_links_for(settings: Settings, address: str) -> dict[str, list[str]]:
    for path in sorted(settings.resolved_outbox_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["To"] and address in str(message["To"]):
            text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]  # a digest has a text part
            links: dict[str, list[str]] = {"More": [], "Less": []}
            for kind, url in LINK.findall(text):
                links[kind].append(url)
            return links
    raise AssertionError(f"no digest to {address}")
