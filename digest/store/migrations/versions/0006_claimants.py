"""claimants: digests are claimed by a live run or worker; last window per subscriber;
no paper index on digest_item

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claimant",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("process_start", sa.String(length=40), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("digest") as batch:
        batch.add_column(sa.Column("claimed_by", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_digest_claimed_by_claimant", "claimant", ["claimed_by"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_digest_subscriber_window", ["subscriber_id", "window_end"])
    op.drop_index("ix_digest_item_paper_id", table_name="digest_item")


def downgrade() -> None:
    op.create_index("ix_digest_item_paper_id", "digest_item", ["paper_id"])
    with op.batch_alter_table("digest") as batch:
        batch.drop_index("ix_digest_subscriber_window")
        batch.drop_constraint("fk_digest_claimed_by_claimant", type_="foreignkey")
        batch.drop_column("claimed_by")
    op.drop_table("claimant")
