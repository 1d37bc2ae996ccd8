"""Indexes a journal row leaves or keeps when it is settled, so sending rewrites fewer pages.

journal_state (campaign_id, state) held every row: a claim moved its entry from the
pending to the claimed part of the index and the settle from there to the sent part,
three index pages a message. journal_unsettled holds only rows neither pending nor
sent (claimed, retry, unknown, rejected, bounced, complained): what recovery, resends
and reports look for. journal_by_address no longer keys on the state, which a claim
and a settle changed; the once-rule reads the state from the few rows of one address.
Together they halve the pages each message's commit writes.

Revision ID: 0009
Revises: 0008
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UNSETTLED = sa.text("state NOT IN ('pending', 'sent')")


def upgrade() -> None:
    op.drop_index("journal_state", "journal")
    op.drop_index("journal_by_address", "journal")
    op.create_index("journal_unsettled", "journal", ["campaign_id", "state"],
                    sqlite_where=UNSETTLED, postgresql_where=UNSETTLED)
    op.create_index("journal_by_address", "journal", ["address_hash", "campaign_id"])


def downgrade() -> None:
    op.drop_index("journal_by_address", "journal")
    op.drop_index("journal_unsettled", "journal")
    op.create_index("journal_by_address", "journal", ["address_hash", "campaign_id", "state"])
    op.create_index("journal_state", "journal", ["campaign_id", "state"])
