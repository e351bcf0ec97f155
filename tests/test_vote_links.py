"""Signed "more / less like this" values: the fast signer writes exactly what itsdangerous's
``URLSafeSerializer.dumps`` writes, compressed payloads included, and reads them back."""

from __future__ import annotations

import hashlib
import random
import string

import pytest
from itsdangerous import URLSafeSerializer

from digest.render.assemble import ViewOptions
from digest.subscribers.links import VoteSigner, token_fingerprint, vote_signer, vote_urls

SECRET = "a secret key of thirty-two chars"
TOKEN = "0123456789abcdefghijklmnopqrstuv"


def reference(secret: str, subscriber_id: int, token: str, key: str) -> str:
    serializer = URLSafeSerializer(
        secret, salt=VoteSigner.SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )
    return str(serializer.dumps([subscriber_id, token_fingerprint(token), key]))


KEYS = [
    "arxiv:2411.12345",
    "doi:10.1000/xyz-123",
    "",
    "hf:Zoë-Ångström/李雷",  # non-ASCII: UTF-8 in the JSON, as itsdangerous writes it
    'quote " backslash \\ and \u2028 separator',
    "a" * 40,  # compressible: the payload gets the "." prefix
    "ab" * 30,
    "url:https://example.org/" + "paper/" * 25,  # over the probe's size
    "x" * 500,
    "url:" + "".join(random.Random(3).choices(string.printable, k=300)),  # not compressible
]


@pytest.mark.parametrize("key", KEYS)
def test_signed_values_are_itsdangerous_bytes(key: str) -> None:
    signer = VoteSigner(SECRET)
    for subscriber_id in (1, 42, 10**12):
        signed = signer.sign(subscriber_id, TOKEN, key)
        assert signed == reference(SECRET, subscriber_id, TOKEN, key)
        claim = signer.read(signed)
        assert claim is not None
        assert (claim.subscriber_id, claim.paper_key) == (subscriber_id, key)


def test_random_keys_match_itsdangerous() -> None:
    rng = random.Random(11)
    alphabets = ["ab", "abc", "0123456789abcdef", string.ascii_letters + ":/._-", "aé李 "]
    signer = VoteSigner(SECRET)
    compressed = 0
    for _ in range(3000):
        key = "".join(rng.choices(rng.choice(alphabets), k=rng.randint(0, 160)))
        subscriber_id = rng.randint(1, 10**7)
        token = "".join(rng.choices(string.ascii_letters, k=32))
        signed = signer.signing_for(subscriber_id, token)(key)
        assert signed == reference(SECRET, subscriber_id, token, key), key
        compressed += signed.startswith(".")
    assert compressed > 100  # the compressed branch was exercised, not only the plain one


def test_view_options_vote_links_use_the_signer() -> None:
    options = ViewOptions("https://digest.example.org/", secret_key=SECRET)
    more, less = options.votes_for(7, TOKEN)("arxiv:2411.12345")
    signed = reference(SECRET, 7, TOKEN, "arxiv:2411.12345")
    assert (more, less) == vote_urls("https://digest.example.org/", signed)
    assert vote_signer(SECRET) is vote_signer(SECRET)  # one signer per process and key
    assert ViewOptions("https://x.example").votes_for(7, TOKEN)("k") == (None, None)
