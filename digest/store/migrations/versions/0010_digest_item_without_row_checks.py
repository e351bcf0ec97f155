"""digest_item: no per-row foreign-key checks; a digest's deletion removes its items by trigger

The weekly run inserts ~2 million ledger items in one statement stream. Each row's three
foreign-key checks (digest, subscriber, paper) were most of that insert's cost: on SQLite
7.7 → 3.1 µs per row without them, on PostgreSQL (``COPY``, where each check is a
per-row RI trigger running a ``SELECT … FOR KEY SHARE``) 31.7 → 6.7 µs per row
(docs/benchmarks.md, "Weekly run, end to end"). What they guaranteed is kept otherwise:

- ``digest_id``: items are only written with digests in the same transaction, by the ledger
  (ids from ``INSERT … RETURNING``) and the history import; its ``ON DELETE CASCADE`` is now
  the trigger below, so deleting a digest, or a subscriber (whose digests cascade), still
  removes the items;
- ``subscriber_id``: the item's digest's subscriber, whose own foreign key stays;
- ``paper_id``: papers are never deleted; items only name papers read from the store.

The unique (subscriber_id, paper_id), the ledger's never-a-duplicate guarantee, stays.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_PARENTS = ("digest", "subscriber", "paper")
# SQLite's foreign keys have no names: a naming convention lets batch mode drop them.
_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "digest_item", recreate="always", naming_convention=_CONVENTION
        ) as batch:
            for parent in _PARENTS:
                batch.drop_constraint(f"fk_digest_item_{parent}_id_{parent}", type_="foreignkey")
        op.execute(
            "CREATE TRIGGER digest_item_cascade AFTER DELETE ON digest FOR EACH ROW "
            "BEGIN DELETE FROM digest_item WHERE digest_id = OLD.id; END"
        )
        return
    for parent in _PARENTS:
        op.drop_constraint(f"digest_item_{parent}_id_fkey", "digest_item", type_="foreignkey")
    op.execute(
        "CREATE FUNCTION digest_item_cascade() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN DELETE FROM digest_item WHERE digest_id = OLD.id; RETURN OLD; END $$"
    )
    op.execute(
        "CREATE TRIGGER digest_item_cascade AFTER DELETE ON digest FOR EACH ROW "
        "EXECUTE FUNCTION digest_item_cascade()"
    )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute("DROP TRIGGER digest_item_cascade" + ("" if sqlite else " ON digest"))
    if not sqlite:
        op.execute("DROP FUNCTION digest_item_cascade()")
    with op.batch_alter_table("digest_item", naming_convention=_CONVENTION) as batch:
        for parent in _PARENTS:
            name = (
                f"fk_digest_item_{parent}_id_{parent}"
                if sqlite
                else f"digest_item_{parent}_id_fkey"
            )
            batch.create_foreign_key(name, parent, [f"{parent}_id"], ["id"], ondelete="CASCADE")
