"""The always-on scheduler: ``digest serve`` and ``digest scheduler``.

- ``lease.py``: the database lease that lets exactly one process run the jobs;
- ``plan.py``: what is due at ``now`` (missed periods, waiting work, next send times);
- ``jobs.py``: the fetch and deliver jobs, each given ``now``;
- ``service.py``: APScheduler 3.11 wiring (the only importer of APScheduler), standby;
- ``signals.py``: SIGTERM/SIGINT and the foreground loop.

Nothing is imported here, so ``digest status`` can use ``plan`` without loading APScheduler.
"""
