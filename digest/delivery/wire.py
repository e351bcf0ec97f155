"""The one way a message becomes bytes, shared by every transport (and a DKIM signer).

``policy.SMTP`` folds at 78 columns and RFC 2047-encodes a long ``List-Unsubscribe`` value
into garbage (see ``docs/delivery.md``), so ASCII headers are folded only past RFC 5322's
hard limit of 998 characters. Headers that need encoding keep 78 columns: at 998 Python
writes one encoded word hundreds of characters long, and RFC 2047 §2 caps them at 75.
Signing and sending must serialize identically, or a DKIM signature breaks in transit.
"""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Any


class _WirePolicy(EmailPolicy):
    """``policy.SMTP`` with 998-character lines for headers that stay plain ASCII."""

    def fold(self, name: str, value: Any) -> str:
        if str(value).isascii():
            folded: str = super().fold(name, value)
            return folded
        narrow: str = policy.SMTP.fold(name, value)
        return narrow

    def fold_binary(self, name: str, value: Any) -> bytes:
        if str(value).isascii():
            return super().fold_binary(name, value)
        return policy.SMTP.fold_binary(name, value)


WIRE_POLICY: EmailPolicy = _WirePolicy(linesep="\r\n", max_line_length=998)
"""CRLF line ends; ASCII header lines folded only past 998 characters, others at 78."""


def message_bytes(message: EmailMessage) -> bytes:
    """Serialize ``message`` exactly as it goes on the wire (see the module doc)."""
    return message.as_bytes(policy=WIRE_POLICY)
