"""The state database: engine and connections, the one transaction helper, schema, migrations.

    conn = store.connect(settings)          # or a SQLite path, or a database URL
    with store.atomic(conn):                # one transaction (a savepoint when nested)
        conn.execute(...)
    conn.close()

Everything that depends on the database engine lives in this package; the
rest of postbode builds Core expressions over `store.schema`.
"""
from __future__ import annotations

from sqlalchemy import Connection

from postbode.store.engine import (Target, checkpoint, database_url, engine_for, open_connection,
                                   shown, wait_briefly)
from postbode.store.upgrade import current, head, migrate
from postbode.store.sql import (driver_fetch, driver_many, driver_rows, execute_many, insert_ignore,
                                json_items, json_number, json_text, run_seen)
from postbode.store.transaction import atomic, in_atomic, read_snapshot

__all__ = ["Connection", "atomic", "checkpoint", "connect", "current", "database_url", "driver_fetch", "driver_many",
           "driver_rows", "engine_for", "execute_many", "head", "in_atomic", "insert_ignore",
           "json_items", "json_number", "json_text", "migrate", "read_snapshot", "run_seen", "shown",
           "upgrade_schema", "wait_briefly"]


def connect(target: Target, *, migrate: bool = True, read_only: bool = False) -> Connection:
    """Open the state database (settings, a SQLite path or a URL), migrated unless told not to.

    Migrating costs one query when the schema is current; web requests pass
    migrate=False (the app migrated at start-up). A read-only connection (preview,
    archive) is never migrated and refuses every write.
    """
    conn = open_connection(target, read_only=read_only)
    if migrate and not read_only:
        try:
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
    return conn


_migrate = migrate


def upgrade_schema(target: Target) -> tuple[str | None, str | None]:
    """Migrate the database explicitly (`db upgrade`); its revision before and after."""
    conn = open_connection(target)
    try:
        before = current(conn)
        _migrate(conn)
        return before, current(conn)
    finally:
        conn.close()
