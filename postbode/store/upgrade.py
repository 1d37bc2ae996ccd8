"""Bring a database to the newest schema with Alembic, once, at start-up.

A new database gets every table of `schema` at once and is stamped with the
newest revision (Alembic's recipe for a fresh database); an existing one is
upgraded through the revisions it lacks, including a database made before
Alembic (revision 0001 adopts it). The upgrade runs in one write transaction,
so two programs starting together migrate once.

Alembic is imported only when a database is behind: a command on a current
database checks the revision with one plain query and starts faster for it.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, column, inspect, select, table, text

from postbode.errors import PostbodeError
from postbode.store.schema import metadata, with_postgresql_where
from postbode.store.transaction import atomic

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
_REVISION_LINE = re.compile(r'^(down_revision|revision) = (None|"([^"]+)")$', re.MULTILINE)

if TYPE_CHECKING:
    from alembic.config import Config


def _config(conn: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


@lru_cache(maxsize=1)
def head() -> str:
    """The newest revision: the one no migration names as its `down_revision`.

    Read from the migration files' two assignment lines, without loading Alembic
    (a test checks it agrees with Alembic's own answer).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("[0-9]*.py"):
        for name, _value, revision in _REVISION_LINE.findall(script.read_text("utf-8")):
            if revision:
                (revisions if name == "revision" else parents).add(revision)
    heads = revisions - parents
    if len(heads) != 1:
        raise PostbodeError(f"the schema migrations in {MIGRATIONS} have {len(heads)} newest "
                            "revisions instead of one; reinstall postbode")
    return heads.pop()


def current(conn: Connection) -> str | None:
    """The revision the database is at (None: new, or made before Alembic)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    versions = table(VERSION_TABLE, column("version_num"))
    return conn.execute(select(versions.c.version_num)).scalar()


def is_current(conn: Connection) -> bool:
    """True when the database needs no migration (one cheap query)."""
    return current(conn) == head()


@lru_cache(maxsize=1)
def known() -> frozenset[str]:
    """Every revision this version of postbode knows."""
    from alembic.script import ScriptDirectory

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
        from alembic import command

        if inspect(conn).get_table_names():
            command.upgrade(_config(conn), "head")
        else:
            if conn.dialect.name == "postgresql":
                with_postgresql_where()
            metadata.create_all(conn)
            command.stamp(_config(conn), "head")
    return True
