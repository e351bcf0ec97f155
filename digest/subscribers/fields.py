"""The one declaration of a subscriber's preferences.

Every place a subscriber's preferences are read or written derives its fields from
:data:`PREFERENCES`: the CLI options of ``digest subscribers add`` / ``edit``
(:mod:`digest.cli.preferences`), the profile files and exports (:mod:`.files`), ``show
--json`` (:func:`.library.describe`), and the web forms (:mod:`digest.web.forms`, whose
template inputs a test checks against :data:`WEB_FIELDS`). A new preference is one entry here,
a column on :class:`~digest.store.models.Subscriber` (schedule values) and its validation
in :class:`.library.SubscriberFields`.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("pending", "active", "paused", "unsubscribed")
FREQUENCIES = ("daily", "weekly", "off")
PROFILE_KINDS = ("keyword", "exclude", "require", "author", "category")


@dataclass(frozen=True, slots=True)
class Preference:
    """One preference field.

    ``name`` is its key everywhere (profile files, exports, ``show --json``, form inputs) and
    its attribute on ``ProfileSpec`` (lists) or ``SubscriberFields`` (schedule values).
    """

    name: str
    help: str
    flag: str  # the CLI option
    short: str | None = None
    kind: str | None = None  # the interest kind a list is stored as; None: a schedule value
    type: type = str  # what the CLI option parses (lists: of str)
    web: bool = False  # on the manage form
    signup: bool = False  # on the subscribe form
    aliases: tuple[str, ...] = ()  # older or singular spellings accepted in files

    @property
    def is_list(self) -> bool:
        return self.kind is not None

    @property
    def param(self) -> str:
        """The Python parameter name of its CLI option."""
        return self.flag.removeprefix("--").replace("-", "_")


PREFERENCES: tuple[Preference, ...] = (
    Preference(
        "keywords",
        "Interest phrase; weight with ^N, e.g. 'RLHF^2'.",
        "--keyword",
        "-k",
        kind="keyword",
        web=True,
        signup=True,
    ),
    Preference(
        "excludes",
        "Drop papers matching this phrase.",
        "--exclude",
        "-x",
        kind="exclude",
        web=True,
        signup=True,
        aliases=("exclude",),
    ),
    Preference(
        "required",
        "Every pick must match this phrase.",
        "--require",
        kind="require",
        aliases=("require",),
    ),
    Preference("authors", "Author name to follow.", "--author", kind="author"),
    Preference("categories", "arXiv category, e.g. cs.LG.", "--category", kind="category"),
    Preference("name", "Display name.", "--name"),
    Preference("frequency", "daily, weekly or off.", "--frequency", web=True, signup=True),
    Preference(
        "weekday",
        "Weekday of weekly digests: monday … sunday (or 0-6, 0 = Monday).",
        "--weekday",
        web=True,
        signup=True,
    ),
    Preference(
        "hour", "Local hour digests are sent (0-23).", "--hour", type=int, web=True, signup=True
    ),
    Preference(
        "timezone", "IANA time zone, e.g. Europe/Berlin.", "--timezone", web=True, signup=True
    ),
    Preference("max_items", "Papers per digest (1-100).", "--max-items", type=int, web=True),
    Preference(
        "min_score",
        "Score a paper needs to be picked (default: the ranker's).",
        "--min-score",
        type=float,
    ),
    Preference(
        "popularity_weight",
        "How much upvotes lift a paper (0-10; 0: not at all).",
        "--popularity-weight",
        type=float,
    ),
)

PROFILE_FIELDS: tuple[Preference, ...] = tuple(p for p in PREFERENCES if p.is_list)
SCHEDULE_FIELDS: tuple[Preference, ...] = tuple(p for p in PREFERENCES if not p.is_list)
WEB_FIELDS: tuple[str, ...] = tuple(p.name for p in PREFERENCES if p.web)
SIGNUP_FIELDS: tuple[str, ...] = tuple(p.name for p in PREFERENCES if p.signup)
# Profile file / export key → preference name (names and their accepted aliases).
FILE_KEYS: dict[str, str] = {key: p.name for p in PREFERENCES for key in (p.name, *p.aliases)}
