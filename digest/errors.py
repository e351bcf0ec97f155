"""The one exception tree of paper-digest.

Core code raises these; the CLI turns them into a one-line message and exit code 1, the web
app into an HTTP status. Anything else escaping is a bug and keeps its traceback.

::

    DigestError
    ├── ConfigError                 bad settings, bad digest.toml, bad source config
    ├── ListingError                a listing could not be read
    │   ├── ListingFormatError      unknown or undetectable format
    │   ├── ListingParseError       malformed content (names the file and where it broke)
    │   └── ListingTooLargeError    over the size limit
    ├── SourceFetchError            a network source failed (after retries)
    ├── ProfileError                invalid profile text or profile file
    ├── UnknownPaperError           no paper with this key in the store
    ├── SubscriberError             invalid, duplicate or unknown subscriber
    │   ├── InvalidEmailError
    │   ├── DuplicateSubscriberError
    │   └── UnknownSubscriberError
    ├── LeaseLostError              this scheduler lost its database lease (digest.scheduler)
    ├── RenderError                 a template failed to compile or render
    └── DeliveryError               a message could not be delivered
        ├── TransientDeliveryError  4xx, dropped connection, timeout: retry later
        └── PermanentDeliveryError  5xx at RCPT/DATA: the address is flagged
"""

from __future__ import annotations


class DigestError(Exception):
    """Base class of every expected failure."""


class ConfigError(DigestError):
    """Settings, digest.toml or a source definition is invalid."""


class ListingError(DigestError):
    """A listing (file or fetched payload) could not be read."""


class ListingFormatError(ListingError):
    """The listing's format is unknown or could not be detected."""


class ListingParseError(ListingError):
    """The listing is malformed; the message names the file and where it broke."""


class ListingTooLargeError(ListingError):
    """The listing is larger than the configured limit."""


class SourceFetchError(DigestError):
    """A network source failed, after retries."""


class ProfileError(DigestError):
    """Profile text or a profile file is invalid."""


class UnknownPaperError(DigestError):
    """No paper with this key is in the store."""


class SubscriberError(DigestError):
    """A subscriber operation was refused."""


class InvalidEmailError(SubscriberError):
    """The address is not a valid email address."""


class DuplicateSubscriberError(SubscriberError):
    """A subscriber with this address already exists."""


class UnknownSubscriberError(SubscriberError):
    """No subscriber has this address."""


class RenderError(DigestError):
    """A template failed to compile or render."""


class DeliveryError(DigestError):
    """A message could not be delivered."""


class TransientDeliveryError(DeliveryError):
    """Temporary failure (SMTP 4xx, dropped connection, timeout): try again later."""


class PermanentDeliveryError(DeliveryError):
    """Permanent failure (SMTP 5xx at RCPT or DATA): the address is flagged."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
