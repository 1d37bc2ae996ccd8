"""Adopt a database made before Alembic: its tables stay, row for row.

Such a database records its migrations by name in a `migrations` table
(0001_audience, 0101_journal … 0201_webhooks). Its tables already have the
schema of `postbode.store.schema`; the indexes added by the last of those
migrations are created if a database never got them, and the old registry
table is dropped: `alembic_version` records the schema from now on.

Revision ID: 0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Indexes of the legacy migrations 0102-0104, by name: (columns, partial condition).
LEGACY_INDEXES = {
    "journal_state": (["campaign_id", "state"], None),
    "journal_variant": (["campaign_id", "state", "locale", "view"], None),
    "journal_message_id": (["message_id"], "message_id IS NOT NULL"),
    "journal_provider_id": (["provider_id"], "provider_id IS NOT NULL"),
}


def upgrade() -> None:
    bind = op.get_bind()
    tables = set(sa.inspect(bind).get_table_names())
    if "journal" in tables:
        for name, (columns, where) in LEGACY_INDEXES.items():
            condition = {"sqlite_where": sa.text(where)} if where else {}
            op.create_index(name, "journal", columns, if_not_exists=True, **condition)
    if "migrations" in tables:
        op.drop_table("migrations")


def downgrade() -> None:
    raise NotImplementedError("a database cannot go back to the schema registry before Alembic")
