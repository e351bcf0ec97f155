"""Hugging Face Daily Papers: one pull per date, every page, from where we stopped to today.

``GET …/daily_papers?date=YYYY-MM-DD&limit=100&p=N``. More pages are announced by
``Link: <…?p=1…>; rel="next"`` (followed, same host only); without one, a full page means
"try the next ``p``"; ``[]`` ends a day. A weekend gives ``[]`` (quiet); a date the server
thinks is in the future gives 400 (not an error: nothing is published yet).

Each date is one batch: all its pages or nothing. Today is pulled on every run because
batches fill up during the day (a later pull adds papers and refreshes upvotes, never drops
what was stored); the cursor advances only over complete past days.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

from digest.config.sources import SourceSpec
from digest.errors import SourceFetchError
from digest.parsers import parse_listing
from digest.parsers.common import one_line, plain_text
from digest.sources.base import Batch, Cursor, FetchContext
from digest.sources.http import Fetched
from digest.store.papers import merge_records
from digest.store.records import PaperRecord

PAGE_SIZE = 100  # the API's maximum (101 is a 400)
MAX_PAGES = 100  # 10,000 papers in a day would be a server bug, not a busy day


@dataclass(frozen=True)
class _Day:
    records: list[PaperRecord]
    pages: int


def _server_error(fetched: Fetched) -> str:
    """The ``{"error": …}`` message of a refusal, else the start of the body."""
    try:
        value = json.loads(fetched.body)
    except ValueError:
        return fetched.text_excerpt()
    if isinstance(value, dict) and "error" in value:
        return one_line(plain_text(str(value["error"])), 200)
    return fetched.text_excerpt()


class HfDaily:
    """The ``hf_daily`` source."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec

    def _headers(self, ctx: FetchContext) -> dict[str, str]:
        token = ctx.settings.hf_token
        return {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}

    def dates(self, ctx: FetchContext, cursor: Cursor) -> list[date]:
        """The dates this run pulls, oldest first; always ends with today."""
        today = ctx.today
        if ctx.probe:
            return [today]
        if ctx.since is not None:
            start = ctx.since
        elif cursor.last_date is not None:
            start = cursor.last_date + timedelta(days=1)
        else:
            start = today - timedelta(days=self.spec.resolved_lookback_days)
        start = min(start, today)
        return [start + timedelta(days=n) for n in range((today - start).days + 1)]

    def fetch(self, ctx: FetchContext, cursor: Cursor) -> Iterator[Batch]:
        for day in self.dates(ctx, cursor):
            pulled = self._pull_day(ctx, day)
            if pulled is None:  # the server's today is behind ours: nothing later exists
                yield Batch(label=f"{day}: not published yet", notes={"future": str(day)})
                return
            complete = day < ctx.today
            advanced = complete and (cursor.last_date is None or day > cursor.last_date)
            if advanced:
                cursor = replace(cursor, last_date=day)
            pages = f"{pulled.pages} page{'s' if pulled.pages != 1 else ''}"
            yield Batch(
                label=f"{day}: {len(pulled.records)} papers, {pages}"
                + ("" if complete else " (today, may grow)"),
                records=pulled.records,
                cursor=cursor if advanced else None,
            )

    def _pull_day(self, ctx: FetchContext, day: date) -> _Day | None:
        base = self.spec.resolved_url
        params: dict[str, str | int] = {"date": day.isoformat(), "limit": PAGE_SIZE}
        url, query = base, {**params, "p": 0}
        records: list[PaperRecord] = []
        keys: set[str] = set()
        pages = 0
        while True:
            fetched = ctx.http.get(url, params=query, headers=self._headers(ctx))
            if fetched.status == 400 and pages == 0 and day >= ctx.today:
                return None
            if fetched.status != 200:
                raise SourceFetchError(
                    f"{fetched.url}: HTTP {fetched.status}: {_server_error(fetched)}"
                    + (" (check DIGEST_HF_TOKEN)" if fetched.status in (401, 403) else "")
                )
            # All-or-nothing per page; a bad page aborts the whole day before any storing.
            page = parse_listing(fetched.body, fmt="hf-json", name=fetched.url, now=ctx.now).records
            pages += 1
            fresh = [record for record in page if record.key not in keys]
            records.extend(page)
            keys.update(record.key for record in page)
            if not page or not fresh or ctx.probe:
                break  # past the end, or a server repeating itself
            if fetched.next_url:
                url, query = fetched.next_url, {}
            elif len(page) >= PAGE_SIZE:
                url, query = base, {**params, "p": pages}
            else:
                break
            if pages >= MAX_PAGES:
                raise SourceFetchError(f"{base}: more than {MAX_PAGES} pages for {day}")
        return _Day(list(merge_records(records).values()), pages)
