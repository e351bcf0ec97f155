"""arXiv listing feeds (``rss.arxiv.org/rss|atom/CAT+CAT``), optionally enriched by the API.

Announce types decide what a listing item does: ``new`` (and ``cross`` when the source says
``cross = true``) announce a paper; ``replace``, ``replace-cross`` and unannounced
cross-lists only refresh a paper already in the store (its version), never adding it as
"new". Every request, listing or API, goes through the shared arXiv :class:`Spacing`
(one connection at a time, ``arxiv_delay`` seconds apart; arXiv's terms of use).

An unknown category makes arXiv answer 400 with a feed titled ``Feed error for query: …``:
that is the source's configuration, reported as a ConfigError on its run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tenacity import Retrying, retry_if_result, stop_after_attempt

from digest.config.sources import SourceSpec
from digest.errors import ConfigError, ListingParseError, SourceFetchError
from digest.parsers import detect_format, parse_listing
from digest.parsers.common import one_line
from digest.sources.base import Batch, Cursor, FetchContext
from digest.sources.feed import conditional_headers, validators
from digest.sources.http import Fetched
from digest.store.identity import canonical_key
from digest.store.papers import merge_records
from digest.store.records import PaperRecord

_FEED_ERROR = re.compile(rb"Feed error for query:?[^<\n]*", re.IGNORECASE)
_LISTING_FORMATS = ("arxiv-rss", "arxiv-atom")
_REFUSED = "arXiv refused the query: "  # the parser's message for an error feed
API_BATCH = 100  # ids per query API request


def _config_error(spec: SourceSpec, url: str, what: str) -> ConfigError:
    return ConfigError(
        one_line(
            f"{url}: arXiv refused the query ({what}); check the categories of source "
            f"{spec.name!r}: {', '.join(spec.categories)}"
        )
    )


@dataclass(frozen=True)
class _Lookup:
    """The query API's answer for some ids."""

    found: dict[str, PaperRecord]
    asked: int


class Arxiv:
    """The ``arxiv`` source."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec

    def _announced(self, record: PaperRecord) -> bool:
        kind = record.announce_type or "new"
        return kind == "new" or (kind == "cross" and self.spec.cross)

    def fetch(self, ctx: FetchContext, cursor: Cursor) -> Iterator[Batch]:
        url = self.spec.resolved_url
        headers = {} if ctx.probe else conditional_headers(cursor)
        fetched = ctx.http.get(url, headers=headers, spacing=ctx.arxiv_spacing)
        if fetched.status == 304:
            yield Batch(label="not modified since the last fetch")
            return
        records = self._parse(ctx, fetched)
        announced = [record for record in records if self._announced(record)]
        others = [record for record in records if not self._announced(record)]
        notes: dict[str, object] = {
            "items": len(records),
            "announced": len(announced),
            "refresh_only": len(others),
        }
        if self.spec.enrich and announced and not ctx.probe:
            try:
                announced, missing = self._enrich(ctx, announced)
                notes["enrich_missing"] = missing
            except SourceFetchError as exc:
                # Enrichment is an extra: the listing's own facts are stored regardless.
                notes["enrich_error"] = str(exc)
        yield Batch(
            label=f"{len(records)} items ({len(announced)} announced)",
            records=announced,
            refresh_only=others,
            cursor=validators(fetched, cursor),
            notes=notes,
        )

    def _parse(self, ctx: FetchContext, fetched: Fetched) -> list[PaperRecord]:
        if fetched.status == 400:
            feed_error = _FEED_ERROR.search(fetched.body)
            what = feed_error.group().decode("utf-8", "replace") if feed_error else "HTTP 400"
            raise _config_error(self.spec, fetched.url, what)
        if fetched.status != 200:
            raise SourceFetchError(
                f"{fetched.url}: HTTP {fetched.status}: {fetched.text_excerpt() or 'no body'}"
            )
        fmt = detect_format(fetched.body, filename=fetched.url)
        if fmt == "feed":  # unrecognisable as arXiv's, often because it is broken: say where
            fmt = (
                "arxiv-atom"
                if re.search(rb"<(?:\w+:)?feed[\s>]", fetched.body[:4096])
                else "arxiv-rss"
            )
        if fmt not in _LISTING_FORMATS:
            raise ListingParseError(
                f"{fetched.url}: not an arXiv listing feed (it reads as {fmt}); "
                "an arxiv source's url is a listing base such as https://rss.arxiv.org/rss"
            )
        try:
            return parse_listing(fetched.body, fmt=fmt, name=fetched.url, now=ctx.now).records
        except ListingParseError as exc:
            if _REFUSED in str(exc):  # a 200 carrying the error feed
                raise _config_error(self.spec, fetched.url, str(exc).split(_REFUSED)[-1]) from exc
            raise

    def _enrich(
        self, ctx: FetchContext, records: list[PaperRecord]
    ) -> tuple[list[PaperRecord], int]:
        """Fill the listing's gaps (v1 date, DOI, journal ref …) from the query API."""
        ids = list(dict.fromkeys(record.arxiv_id for record in records if record.arxiv_id))
        found: dict[str, PaperRecord] = {}
        for start in range(0, len(ids), API_BATCH):
            found.update(self._lookup(ctx, ids[start : start + API_BATCH]).found)
        enriched = [
            merge_records([record, found[record.key]])[record.key]
            if record.key in found
            else record
            for record in records
        ]
        return enriched, len(ids) - len(found)

    def _lookup(self, ctx: FetchContext, ids: Sequence[str]) -> _Lookup:
        # The API sometimes answers with a short or empty page: asking again usually helps.
        retrying = Retrying(
            retry=retry_if_result(lambda lookup: len(lookup.found) < lookup.asked),
            stop=stop_after_attempt(ctx.settings.http_retries + 1),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        result: _Lookup = retrying(self._query, ctx, ids)
        return result

    def _query(self, ctx: FetchContext, ids: Sequence[str]) -> _Lookup:
        api = self.spec.resolved_api_url
        fetched = ctx.http.get(
            api,
            params={"id_list": ",".join(ids), "max_results": len(ids)},
            spacing=ctx.arxiv_spacing,
        )
        if fetched.status != 200:
            raise SourceFetchError(
                f"{fetched.url}: HTTP {fetched.status}: {fetched.text_excerpt()}"
            )
        try:
            listing = parse_listing(fetched.body, fmt="arxiv-api", name=fetched.url, now=ctx.now)
        except ListingParseError as exc:
            raise SourceFetchError(str(exc)) from exc
        wanted = {canonical_key(arxiv_id=arxiv_id, doi=None, title="") for arxiv_id in ids}
        return _Lookup({r.key: r for r in listing.records if r.key in wanted}, len(ids))
