"""digest_item: drop ix_digest_item_digest_id (ix_digest_item_feed starts with digest_id)

``ix_digest_item_feed`` (digest_id, rank, paper_id) serves every lookup by digest (a batch's
items, a feed window, the cascade when a digest is deleted); the single-column index only
cost the weekly run's bulk insert of ~2 million items one more B-tree (about a sixth of its
time on SQLite).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_digest_item_digest_id", table_name="digest_item")


def downgrade() -> None:
    op.create_index("ix_digest_item_digest_id", "digest_item", ["digest_id"])
