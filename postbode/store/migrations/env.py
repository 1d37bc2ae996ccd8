"""Alembic's environment: runs on the connection postbode.store.migrate hands over."""
from __future__ import annotations

from alembic import context

from postbode.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
# The caller holds the transaction (store.atomic), so the whole upgrade is one transaction.
context.run_migrations()
