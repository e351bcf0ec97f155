"""Live listing sources: Hugging Face Daily Papers, arXiv listings, any RSS/Atom feed, files.

::

    spec.py      SourceSpec: one [[sources]] table or `digest sources add` (validated once)
    base.py      the Source protocol, Batch, Cursor, FetchContext
    http.py      the shared httpx client: timeouts, declared retries, size limit, arXiv spacing
    hf_daily.py  arxiv.py  feed.py  file.py      the sources
    config.py    definitions from digest.toml and the store; per-source state
    fetcher.py   `digest fetch`: fetch_all(), one recorded run per source

Nothing is imported here: the settings import ``spec`` and must not pull in the rest.
"""
