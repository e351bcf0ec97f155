"""paper-digest: personal digests of new research papers.

Listings come in (Hugging Face Daily Papers, arXiv, any RSS/Atom feed, saved listing pages),
are diffed against the store of papers already seen, ranked against each subscriber's
profile, and go out as an email and as personal feeds.
"""

__version__ = "0.1.0"
