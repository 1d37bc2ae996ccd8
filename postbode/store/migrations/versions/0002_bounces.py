"""Bounces for SMTP senders: what a bounce mail said, on the journal row and in two tables.

A database made before Alembic by a version with bounces already has them (its
registry names 0105_journal_bounce and 0301_bounces); then nothing is added.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    columns = {c["name"] for c in inspector.get_columns("journal")}
    for name in ("bounce_status", "bounce_diagnostic"):
        if name not in columns:
            op.add_column("journal", sa.Column(name, sa.Text()))
    tables = set(inspector.get_table_names())
    if "bounce_messages" not in tables:
        _messages()
    if "bounce_events" not in tables:
        _events()


def _messages() -> None:
    op.create_table(
        "bounce_messages",
        sa.Column("message_key", sa.Text(), primary_key=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sqlite_with_rowid=False,
    )


def _events() -> None:
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("message_key", sa.Text(), nullable=False),
        sa.Column("journal_id", sa.Integer()),
        sa.Column("campaign_id", sa.Text()),
        sa.Column("email_hash", sa.Text(), nullable=False),
        sa.Column("class", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
    )
    op.create_index("bounce_events_by_hash", "bounce_events", ["email_hash", "class", "at"])
    op.create_index("bounce_events_by_campaign", "bounce_events", ["campaign_id", "class"])
    op.create_index("bounce_events_by_at", "bounce_events", ["at"])


def downgrade() -> None:
    op.drop_table("bounce_events")
    op.drop_table("bounce_messages")
    op.drop_column("journal", "bounce_diagnostic")
    op.drop_column("journal", "bounce_status")
