"""feed windows without a sort: ix_digest_feed, ix_digest_item_feed

A personal feed's head (digest/render/feed_state.py) reads the subscriber's newest sent
digests' items in feed order; these indexes give that order directly, so a conditional GET
walks at most ``feed_items`` rows however long the subscriber's history is.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_digest_feed", "digest", ["subscriber_id", "status", "sent_at", "id"])
    op.create_index("ix_digest_item_feed", "digest_item", ["digest_id", "rank", "paper_id"])


def downgrade() -> None:
    op.drop_index("ix_digest_item_feed", table_name="digest_item")
    op.drop_index("ix_digest_feed", table_name="digest")
