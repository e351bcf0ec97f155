"""The one declaration of a subscriber's preferences.

Every place a subscriber's preferences are read or written derives its fields from
:data:`PREFERENCES`: the CLI options of ``digest subscribers add`` / ``edit``
(:mod:`digest.cli.preferences`), the profile files and exports (:mod:`.files`), ``show
--json`` (:func:`.library.describe`), and the web forms (:mod:`digest.web.forms`, whose
template inputs a test checks against :data:`WEB_FIELDS`). A new preference is one entry here,
a column on :class:`~digest.store.models.Subscriber` (schedule values) and an attribute on
:class:`.library.SubscriberFields` or :class:`.library.ProfileSpec`.

Values are checked by one model built from this declaration (:mod:`.validation`): its type,
bounds and choices here, so the CLI, the web forms, profile files and imports accept and
refuse the same values with the same message, which names the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest.config.calendar import WEEKDAYS

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
    type: type = str  # the value's type: str, int or float (lists: of str)
    web: bool = False  # on the manage form
    signup: bool = False  # on the subscribe form
    aliases: tuple[str, ...] = ()  # older or singular spellings accepted in files
    label: str = ""  # how the web forms name it (default: the name)
    low: float | None = None  # bounds of a number, inclusive
    high: float | None = None
    choices: tuple[str, ...] = ()  # the allowed texts (weekday: or 0-6)
    metavar: str | None = None  # how the CLI help shows its value

    @property
    def is_list(self) -> bool:
        return self.kind is not None

    @property
    def title(self) -> str:
        """The name a form shows (``Hour``, ``Papers per digest``)."""
        return self.label or self.name.replace("_", " ").capitalize()

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
        label="Interests",
        metavar="PHRASE",
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
        label="Exclusions",
        metavar="PHRASE",
    ),
    Preference(
        "required",
        "Every pick must match this phrase.",
        "--require",
        kind="require",
        aliases=("require",),
        metavar="PHRASE",
    ),
    Preference("authors", "Author name to follow.", "--author", kind="author", metavar="NAME"),
    Preference(
        "categories", "arXiv category, e.g. cs.LG.", "--category", kind="category", metavar="CAT"
    ),
    Preference("name", "Display name.", "--name", high=200, metavar="TEXT"),
    Preference(
        "frequency",
        "How often digests come: daily, weekly or off.",
        "--frequency",
        web=True,
        signup=True,
        choices=FREQUENCIES,
        metavar="|".join(FREQUENCIES),
    ),
    Preference(
        "weekday",
        "Weekday of weekly digests: " + ", ".join(WEEKDAYS) + " (or 0-6, 0 = Monday).",
        "--weekday",
        web=True,
        signup=True,
        choices=WEEKDAYS,
        metavar="DAY",
    ),
    Preference(
        "hour",
        "Local hour digests are sent (0-23).",
        "--hour",
        type=int,
        web=True,
        signup=True,
        low=0,
        high=23,
        metavar="0-23",
    ),
    Preference(
        "timezone",
        "IANA time zone, e.g. Europe/Berlin.",
        "--timezone",
        web=True,
        signup=True,
        label="Time zone",
        metavar="ZONE",
    ),
    Preference(
        "max_items",
        "Papers per digest (1-100).",
        "--max-items",
        type=int,
        web=True,
        label="Papers per digest",
        low=1,
        high=100,
        metavar="1-100",
    ),
    Preference(
        "min_score",
        "Score a paper needs to be picked (default: the ranker's).",
        "--min-score",
        type=float,
        low=0,
        metavar="NUMBER",
    ),
    Preference(
        "popularity_weight",
        "How much upvotes lift a paper (0-10; 0: not at all).",
        "--popularity-weight",
        type=float,
        low=0,
        high=10,
        metavar="0-10",
    ),
)

PROFILE_FIELDS: tuple[Preference, ...] = tuple(p for p in PREFERENCES if p.is_list)
SCHEDULE_FIELDS: tuple[Preference, ...] = tuple(p for p in PREFERENCES if not p.is_list)
WEB_FIELDS: tuple[str, ...] = tuple(p.name for p in PREFERENCES if p.web)
SIGNUP_FIELDS: tuple[str, ...] = tuple(p.name for p in PREFERENCES if p.signup)
# Profile file / export key → preference name (names and their accepted aliases).
FILE_KEYS: dict[str, str] = {key: p.name for p in PREFERENCES for key in (p.name, *p.aliases)}
BY_NAME: dict[str, Preference] = {p.name: p for p in PREFERENCES}
