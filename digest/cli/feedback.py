"""``digest feedback``: rate a paper for a subscriber, as their "more / less like this" links do."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from digest.cli.common import console, get_settings, handle_errors, print_json
from digest.errors import UsageError


@handle_errors
def feedback(
    email: Annotated[str, typer.Argument(help="The subscriber's email address.")],
    paper_key: Annotated[str, typer.Argument(help="The paper's key, e.g. arxiv:2410.17243.")],
    up: Annotated[bool, typer.Option("--up", help="More like this.")] = False,
    down: Annotated[bool, typer.Option("--down", help="Less like this.")] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Forget the rating.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rate a paper for a subscriber: --up (more like this), --down (less like this) or
    --clear. Their next digests learn from it; digest subscribers show lists ratings.

    Example: digest feedback ada@example.org arxiv:2410.17243 --up
    """
    from digest.subscribers import admin  # noqa: PLC0415 - imported when the command runs: --help stays fast

    if up + down + clear != 1:
        raise UsageError("give exactly one of --up, --down, --clear")
    vote = 1 if up else -1 if down else 0
    done = admin.feedback(get_settings(), email, paper_key, vote, now=datetime.now(UTC))
    if json_out:
        print_json(done)
        return
    said = {1: "more like this", -1: "less like this", 0: "rating cleared"}[vote]
    console.print(f"{done['email']}: {said}: {done['title']} ({done['key']})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("feedback")(feedback)
