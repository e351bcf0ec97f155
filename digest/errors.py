"""The one exception tree of paper-digest.

Core code raises these; the CLI turns them into a one-line message and an exit code (2 for
``SettingsError``, ``StoreMissingError`` and ``UsageError``: the command could not start;
1 for the others: it ran and failed), the web app into an HTTP status. Anything else
escaping is a bug and keeps its traceback.

::

    DigestError
    ├── ConfigError                 bad settings, bad digest.toml, bad source config
    │   ├── SettingsError           digest.toml, DIGEST_* variables or DIGEST_CONFIG invalid
    │   └── StoreMissingError       no store where the settings point (or an outdated one)
    ├── UsageError                  contradictory or empty command-line options
    ├── ListingError                a listing could not be read
    │   ├── ListingFormatError      unknown or undetectable format
    │   ├── ListingParseError       malformed content (names the file and where it broke)
    │   └── ListingTooLargeError    over the size limit
    ├── SourceFetchError            a network source failed (after retries)
    ├── ProfileError                invalid profile text or profile file
    │   └── PreferenceError         one preference has a wrong type or value (names it)
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


class SettingsError(ConfigError):
    """The settings cannot be loaded: digest.toml, a DIGEST_* variable or DIGEST_CONFIG."""


class StoreMissingError(ConfigError):
    """There is no store where the settings point (read commands never create one), or it
    needs an upgrade that a read command will not do."""


class UsageError(DigestError):
    """A command's options contradict each other, or say nothing to do."""


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


class PreferenceError(ProfileError):
    """One preference has a wrong type or value.

    ``field`` is its name in :mod:`digest.subscribers.fields`, ``key`` how the input spelled
    it (a file key, an alias) and ``problem`` the message without the field, so each surface
    can name the field its own way (``--hour``, ``hour``, "Hour").
    """

    def __init__(self, field: str, problem: str, *, key: str | None = None) -> None:
        self.field, self.problem, self.key = field, problem, key or field
        super().__init__(f"{self.key}: {problem}")


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
