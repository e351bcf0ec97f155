"""feedback: the reader's ratings of papers (+1 more like this, -1 less like this)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("vote", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["paper_id"], ["paper.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "paper_id", name="uq_feedback_subscriber_paper"),
    )
    op.create_index("ix_feedback_subscriber_id", "feedback", ["subscriber_id"])
    op.create_index("ix_feedback_paper_id", "feedback", ["paper_id"])


def downgrade() -> None:
    op.drop_index("ix_feedback_paper_id", table_name="feedback")
    op.drop_index("ix_feedback_subscriber_id", table_name="feedback")
    op.drop_table("feedback")
