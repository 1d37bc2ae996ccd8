"""Once per person per newsletter, and reports that say what happened.

- journal.address_hash (filled for every existing row, indexed): who already has a
  newsletter is found by the hash of the address, which outlives the address;
- campaigns.already_received / sent_again: who a snapshot left out for that reason;
- campaign_sends: each time a campaign was worked on, through which transport.

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 2000


def upgrade() -> None:
    op.add_column("journal", sa.Column("address_hash", sa.Text()))
    _fill_hashes()
    op.create_index("journal_by_address", "journal", ["address_hash", "campaign_id", "state"])
    op.add_column("campaigns", sa.Column("already_received", sa.JSON(), nullable=False,
                                         server_default=sa.text("'{}'")))
    op.add_column("campaigns", sa.Column("sent_again", sa.Integer(), nullable=False,
                                         server_default=sa.text("0")))
    op.create_table(
        "campaign_sends",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Text(), sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("transport", sa.Text(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float()),
    )
    op.create_index("campaign_sends_by_campaign", "campaign_sends", ["campaign_id", "started_at"])


def _fill_hashes() -> None:
    """Every existing row gets the hash of its address (the same key imports use)."""
    # imported here: loading the revisions (a new database is only stamped) stays light
    from postbode.audience.addresses import address_hash

    bind = op.get_bind()
    table = sa.table("journal", sa.column("id", sa.Integer()), sa.column("email", sa.Text()),
                     sa.column("address_hash", sa.Text()))
    fill = (sa.update(table).where(table.c.id == sa.bindparam("row_id"))
            .values(address_hash=sa.bindparam("hash")))
    last = 0
    while True:
        rows = bind.execute(sa.select(table.c.id, table.c.email).where(table.c.id > last)
                            .order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            return
        bind.execute(fill, [{"row_id": row_id, "hash": address_hash(email)}
                            for row_id, email in rows])
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("campaign_sends_by_campaign", "campaign_sends")
    op.drop_table("campaign_sends")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("sent_again")
        batch.drop_column("already_received")
    op.drop_index("journal_by_address", "journal")
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("address_hash")
