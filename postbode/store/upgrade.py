"""Bring a database to the newest schema with Alembic, once, at start-up.

A new database gets every table of `schema` at once and is stamped with the
newest revision (Alembic's recipe for a fresh database); an existing one is
upgraded through the revisions it lacks, including a database made before
Alembic (revision 0001 adopts it). The upgrade runs in one write transaction,
so two programs starting together migrate once.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from postbode.errors import PostbodeError
from postbode.store.schema import metadata
from postbode.store.transaction import atomic

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"


def _config(conn: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


@lru_cache(maxsize=1)
def head() -> str:
    """The newest revision of the schema."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current(conn: Connection) -> str | None:
    """The revision the database is at (None: new, or made before Alembic)."""
    return MigrationContext.configure(conn).get_current_revision()


def is_current(conn: Connection) -> bool:
    """True when the database needs no migration (one cheap query)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return False
    return current(conn) == head()


@lru_cache(maxsize=1)
def known() -> frozenset[str]:
    """Every revision this version of postbode knows."""
    return frozenset(s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions())


def refuse_newer(revision: str | None) -> None:
    """A database a newer postbode migrated is left alone: this one would misread it."""
    if revision is not None and revision not in known():
        raise PostbodeError(
            f"the state database has schema revision {revision}, newer than this postbode "
            f"knows (newest: {head()}); upgrade postbode on this machine before using it")


# Any fixed number: the PostgreSQL advisory lock that lets one program migrate at a time.
MIGRATION_LOCK = 0x706F7374


def migrate(conn: Connection) -> bool:
    """Upgrade the database to the newest schema; True if anything was done."""
    if is_current(conn):
        return False
    with atomic(conn):
        if conn.dialect.name == "postgresql":
            # SQLite's BEGIN IMMEDIATE already lets one writer in; PostgreSQL needs this
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        # checked again under the write lock: another program may just have done it
        found = current(conn)
        refuse_newer(found)
        if found == head():
            return False
        if inspect(conn).get_table_names():
            command.upgrade(_config(conn), "head")
        else:
            metadata.create_all(conn)
            command.stamp(_config(conn), "head")
    return True
