"""Subscribers: who gets digests, with which profile and schedule.

- :mod:`~digest.subscribers.fields`: the one declaration of the preference fields;
- :mod:`~digest.subscribers.library`: add, edit, pause, remove (functions take a session);
- :mod:`~digest.subscribers.admin`: the same as one-transaction calls (the CLI's);
- :mod:`~digest.subscribers.files`: JSON export/import and TOML profile directories;
- :mod:`~digest.subscribers.links`: tokens and the personal URLs built from them.
"""
