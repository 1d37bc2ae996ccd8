"""Opaque subscriber keys for links, erasure-friendly webhook ids, and mailed-link requests.

- `subscribers.subscriber_key`: a random url-safe key per subscriber (filled in for
  every existing row), unique; personal links carry it instead of the address.
- `journal.subscriber_key`: the key a row's mail was made with.
- `link_requests`: when a fresh preferences link was last mailed to an address (by hash).
- Webhook event ids that contain an address are kept as their hash, so erasing a
  person leaves no address in that table (a repeated delivery still matches).

Revision ID: 0005
Revises: 0002
"""
from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

HASHED_ID = "sha256:"


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    if "subscriber_key" not in {c["name"] for c in inspector.get_columns("subscribers")}:
        op.add_column("subscribers", sa.Column("subscriber_key", sa.Text()))
    if "subscriber_key" not in {c["name"] for c in inspector.get_columns("journal")}:
        op.add_column("journal", sa.Column("subscriber_key", sa.Text()))
    _fill_keys(bind)
    op.create_index("subscribers_by_key", "subscribers", ["subscriber_key"], unique=True,
                    if_not_exists=True)
    if "link_requests" not in inspector.get_table_names():
        op.create_table(
            "link_requests",
            sa.Column("email_hash", sa.Text(), primary_key=True),
            sa.Column("requested_at", sa.Float(), nullable=False),
            sqlite_with_rowid=False,
        )
    _hash_webhook_ids(bind)


def _fill_keys(bind) -> None:
    subscribers = sa.table("subscribers", sa.column("id"), sa.column("subscriber_key"))
    ids = bind.execute(sa.select(subscribers.c.id)
                       .where(subscribers.c.subscriber_key.is_(None))).scalars().all()
    if ids:
        bind.execute(sa.update(subscribers).where(subscribers.c.id == sa.bindparam("row"))
                     .values(subscriber_key=sa.bindparam("key")),
                     [{"row": i, "key": secrets.token_urlsafe(16)} for i in ids])


def _hash_webhook_ids(bind) -> None:
    events = sa.table("webhook_events", sa.column("provider"), sa.column("event_id"))
    rows = bind.execute(sa.select(events.c.provider, events.c.event_id)
                        .where(events.c.event_id.like("%@%"))).all()
    for provider, event_id in rows:
        hashed = HASHED_ID + hashlib.sha256(event_id.encode("utf-8")).hexdigest()
        bind.execute(sa.update(events).where(events.c.provider == provider,
                                             events.c.event_id == event_id)
                     .values(event_id=hashed))


def downgrade() -> None:
    op.drop_table("link_requests")
    op.drop_index("subscribers_by_key", "subscribers")
    with op.batch_alter_table("journal") as batch:
        batch.drop_column("subscriber_key")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("subscriber_key")
