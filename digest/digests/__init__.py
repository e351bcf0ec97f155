"""Digests: which periods are due, what each digest selects, and the ledger of its life.

- :mod:`~digest.digests.periods`: periods and send times in each subscriber's time zone;
- :mod:`~digest.digests.due`: due and missed periods at ``now``, the next send times;
- :mod:`~digest.digests.selection`: all due subscribers' candidates ranked at once;
- :mod:`~digest.digests.ledger`: recording, claiming, finishing and retrying digests (the
  only writer of ``digest.status``);
- :mod:`~digest.digests.adhoc`: ranking listing files for a profile without the store.
"""
