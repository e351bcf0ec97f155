"""Where shipped files live: templates and the bundled sample listings.

In a wheel the templates are installed as ``digest/_templates``; in a source checkout
(editable install) they are the repository's ``templates/`` directory.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # digest/


def templates_dir() -> Path:
    """The shipped templates directory."""
    installed = PACKAGE_DIR / "_templates"
    if installed.is_dir():
        return installed
    return PACKAGE_DIR.parent / "templates"


def sample_dir() -> Path:
    """The bundled sample listings (saved Hugging Face listing pages, gzipped)."""
    return PACKAGE_DIR / "demo" / "sample"


def subscribers_dir() -> Path:
    """The demo subscriber profiles (``subscribers/`` in a checkout)."""
    installed = PACKAGE_DIR / "_subscribers"
    if installed.is_dir():
        return installed
    return PACKAGE_DIR.parent / "subscribers"
