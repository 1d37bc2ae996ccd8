"""Scheduled campaigns: `send … --at TIME` records one, `worker` starts it when it is due.

Revision ID: 0007
Revises: 0006
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("newsletter_path", sa.Text(), nullable=False),
        sa.Column("newsletter_id", sa.Text(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("content_parts", sa.JSON(), nullable=False),
        sa.Column("transport", sa.Text(), nullable=False),
        sa.Column("new_campaign", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("again", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("send_at", sa.Float(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("campaign_id", sa.Text()),
        sa.Column("resume_at", sa.Float()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float()),
        sa.Column("finished_at", sa.Float()),
    )
    op.create_index("schedules_due", "schedules", ["status", "send_at"])


def downgrade() -> None:
    op.drop_index("schedules_due", "schedules")
    op.drop_table("schedules")
