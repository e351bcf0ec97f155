"""The network rim of every source: one httpx client, declared retries, a size cap, spacing.

- Timeouts are explicit on every request (an injected client gets them too).
- Retries are declared with tenacity: connection errors, timeouts, 429 and 5xx are retried
  with exponential backoff and jitter, each one logged (a warning: what failed, which retry,
  how long the wait) so a slow or unreachable host is never silent. A 429/503 that says how
  long to wait (``Retry-After``, or ``t=``/``reset=`` in the ``RateLimit`` header) is waited
  out exactly, unless that is longer than ``http_max_wait``, in which case we give up
  rather than hammer the host.
- Bodies are read while streaming and refused once over ``max_listing_bytes`` (counted after
  content decoding, so a gzip bomb is refused too).
- :class:`Spacing` serialises requests to one host group (arXiv: one connection at a time,
  one request every 3 s).

Errors leave here as :class:`~digest.errors.SourceFetchError` (after retries) or
:class:`~digest.errors.ListingTooLargeError`; other HTTP statuses are returned for the
source to interpret (a 400 means different things to different APIs).
"""

from __future__ import annotations

import email.utils
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx
from tenacity import RetryCallState as _State
from tenacity import Retrying, retry_if_exception, wait_exponential, wait_random

from digest import __version__
from digest.config.settings import Settings
from digest.errors import ListingTooLargeError, SourceFetchError
from digest.parsers.common import one_line

log = logging.getLogger(__name__)
Sleep = Callable[[float], None]
_RATELIMIT_WAIT = re.compile(r"(?:^|[\s;,])(?:t|reset)\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_CHUNK = 1 << 16


def user_agent(settings: Settings) -> str:
    """A descriptive User-Agent with a contact (arXiv's terms ask for one)."""
    if settings.http_user_agent:
        return settings.http_user_agent
    contact = email.utils.parseaddr(settings.mail_from)[1] or "no contact"
    return f"paper-digest/{__version__} (+{settings.base_url}; mailto:{contact})"


def make_client(settings: Settings) -> httpx.Client:
    """The client ``digest fetch`` uses when none is injected."""
    return httpx.Client(
        timeout=httpx.Timeout(settings.http_timeout),
        headers={"User-Agent": user_agent(settings)},
        follow_redirects=True,
    )


@dataclass(frozen=True)
class Fetched:
    """A response read in full (under the size cap)."""

    url: str
    status: int
    headers: httpx.Headers
    body: bytes
    next_url: str | None = None  # from ``Link: <…>; rel="next"``, resolved, same host only

    def text_excerpt(self, limit: int = 200) -> str:
        """The start of the body as one line, for error messages."""
        return one_line(self.body[:2000].decode("utf-8", errors="replace"), limit)


class _RetryableStatus(Exception):  # noqa: N818 - internal signal, never escapes this module
    def __init__(self, url: str, status: int, reason: str, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status} {reason}".strip())
        self.url, self.status, self.retry_after = url, status, retry_after


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """How long the server asks us to wait: ``Retry-After`` (seconds or an HTTP date), else
    the ``t=``/``reset=`` of a ``RateLimit`` header (draft-ietf-httpapi-ratelimit-headers)."""
    value = (headers.get("retry-after") or "").strip()
    if value:
        if re.fullmatch(r"\d+(?:\.\d+)?", value):
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    match = _RATELIMIT_WAIT.search(headers.get("ratelimit") or "")
    return float(match.group(1)) if match else None


def _next_link(response: httpx.Response) -> str | None:
    href = response.links.get("next", {}).get("url")
    if not href:
        return None
    resolved = urljoin(str(response.url), href)
    here, there = urlsplit(str(response.url)), urlsplit(resolved)
    # A Link header must not send us (and a token) to another host.
    return resolved if (here.scheme, here.netloc) == (there.scheme, there.netloc) else None


class Spacing:
    """One request at a time, at least ``interval`` seconds after the previous one ended.

    Measured from the end of the previous response, so starts are at least that far apart
    as well. Shared by every request to one host group within a process.
    """

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._last_end: float | None = None

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._last_end is not None:
                wait = self._last_end + self.interval - self._clock()
                if wait > 0:
                    self._sleep(wait)
            try:
                yield
            finally:
                self._last_end = self._clock()


@dataclass(frozen=True)
class RetryPolicy:
    """Declared retry behaviour; ``first_wait=0`` switches waiting off (tests)."""

    retries: int = 4
    first_wait: float = 2.0
    max_wait: float = 120.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.http_retries, settings.http_retry_wait, settings.http_max_wait)


def _retryable(exc: BaseException) -> bool:
    return isinstance(
        exc,
        _RetryableStatus | httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError,
    )


class Http:
    """GET with timeouts, retries, a size cap and optional spacing, on an injected client."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        timeout: float,
        max_bytes: int,
        policy: RetryPolicy,
        agent: str | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.client, self.max_bytes, self.policy = client, max_bytes, policy
        # Sent on every request, so an injected client identifies us too.
        self.headers = {"User-Agent": agent} if agent else {}
        self.timeout = httpx.Timeout(timeout)
        self._sleep = sleep
        # first_wait · 2ⁿ plus up to first_wait of jitter (so that clients do not retry in step).
        self._backoff = wait_exponential(
            multiplier=policy.first_wait, max=policy.max_wait
        ) + wait_random(0, policy.first_wait)

    @classmethod
    def from_settings(
        cls, client: httpx.Client, settings: Settings, *, sleep: Sleep = time.sleep
    ) -> Http:
        return cls(
            client,
            timeout=settings.http_timeout,
            max_bytes=settings.max_listing_bytes,
            policy=RetryPolicy.from_settings(settings),
            agent=user_agent(settings),
            sleep=sleep,
        )

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        spacing: Spacing | None = None,
    ) -> Fetched:
        """The response to ``GET url`` (any status but 429/5xx, which are retried)."""
        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            stop=self._stop,
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._announce,
            reraise=True,
        )
        try:
            return retrying(self._attempt, url, params, headers, spacing)
        except _RetryableStatus as exc:
            raise SourceFetchError(self._status_message(exc)) from None
        except httpx.TimeoutException:
            raise SourceFetchError(
                f"{url}: timed out ({self.timeout.read:g} s) {self._tries()}"
            ) from None
        except httpx.TransportError as exc:
            raise SourceFetchError(
                one_line(
                    f"{url}: {type(exc).__name__}: {exc or 'connection failed'} {self._tries()}"
                )
            ) from None
        except (httpx.RequestError, httpx.InvalidURL) as exc:  # bad encoding, redirect loops …
            raise SourceFetchError(one_line(f"{url}: {type(exc).__name__}: {exc}")) from None

    def _tries(self) -> str:
        total = self.policy.retries + 1
        return f"after {total} attempt{'s' if total > 1 else ''}"

    def _status_message(self, exc: _RetryableStatus) -> str:
        if exc.retry_after is not None and exc.retry_after > self.policy.max_wait:
            return (
                f"{exc.url}: {exc}; the server asks to wait {exc.retry_after:g} s, more than "
                f"the {self.policy.max_wait:g} s allowed (DIGEST_HTTP_MAX_WAIT)"
            )
        return f"{exc.url}: {exc} {self._tries()}"

    def _stop(self, state: _State) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, _RetryableStatus) else None
        if retry_after is not None and retry_after > self.policy.max_wait:
            return True  # waiting less than asked would only earn another 429
        return state.attempt_number > self.policy.retries

    def _announce(self, state: _State) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus):
            reason = str(exc)
        elif exc is not None:
            reason = one_line(f"{type(exc).__name__}: {exc or 'no answer'}", 200)
        else:
            reason = "no answer"
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "GET %s failed (%s); retry %d of %d in %.1f s",
            state.args[0] if state.args else "?",
            reason,
            state.attempt_number,
            self.policy.retries,
            wait,
        )

    def _wait(self, state: _State) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(state))

    def _attempt(
        self,
        url: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
        spacing: Spacing | None,
    ) -> Fetched:
        with (
            spacing.slot() if spacing else nullcontext(),
            self.client.stream(
                "GET",
                url,
                params=dict(params) if params else None,
                headers={**self.headers, **(headers or {})},
                timeout=self.timeout,
                follow_redirects=True,
            ) as response,
        ):
            status = response.status_code
            if status == 429 or status >= 500:
                raise _RetryableStatus(
                    str(response.url),
                    status,
                    response.reason_phrase,
                    retry_after_seconds(response.headers),
                )
            body = self._read_capped(response)
            return Fetched(str(response.url), status, response.headers, body, _next_link(response))

    def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        encoded = response.headers.get("content-encoding", "identity") != "identity"
        if declared.isdigit() and not encoded and int(declared) > self.max_bytes:
            raise self._too_large(str(response.url), f"declares {int(declared):,} bytes")
        chunks: list[bytes] = []
        total = 0
        for chunk in response.iter_bytes(_CHUNK):
            total += len(chunk)
            if total > self.max_bytes:
                raise self._too_large(str(response.url), "is larger than that")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, url: str, what: str) -> ListingTooLargeError:
        return ListingTooLargeError(
            one_line(
                f"{url}: refused: the limit is {self.max_bytes:,} bytes and the response {what}"
            )
        )
