"""The state database: one SQLite file, opened in WAL mode, with named migrations."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable

from postbode import files
from postbode.errors import PostbodeError

Migration = Callable[[sqlite3.Connection], None]

# Migrations by name, in the order they were registered. A module that owns
# tables (audience, journal) registers its own with @migration("name").
MIGRATIONS: dict[str, Migration] = {}


def migration(name: str) -> Callable[[Migration], Migration]:
    """Register a schema migration; it runs once per database, in its own transaction."""

    def register(fn: Migration) -> Migration:
        if name in MIGRATIONS and MIGRATIONS[name] is not fn:
            raise RuntimeError(f"migration {name!r} registered twice")
        MIGRATIONS[name] = fn
        return fn

    return register


def connect(path: Path | str, *, migrate: bool = True) -> sqlite3.Connection:
    """Open (and create) the state database, ready for concurrent use."""
    path = Path(path)
    try:
        files.private_folder(path.parent)  # addresses and consent: owner-only (0700/0600);
        files.make_private(path)  # before SQLite opens it: its -wal and -shm files copy the mode
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        # the first statement reads the file: a file that is not a database fails here
        conn.execute("PRAGMA journal_mode=WAL")
    except (OSError, sqlite3.Error) as err:
        raise PostbodeError(
            f"{path}: cannot open the state database ({err}); check the path "
            "(POSTBODE_DB or [paths] database in postbode.toml) and its permissions"
        ) from err
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA synchronous=NORMAL")
    if migrate:
        apply_migrations(conn)
    return conn


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Run every registered migration not yet recorded; return the names applied."""
    # Import the modules that own tables so their migrations are registered (audience also
    # holds the webhooks' tables). Not at the top: they import this module for @migration.
    import postbode.audience  # noqa: F401
    import postbode.journal  # noqa: F401
    import postbode.bounces.store  # noqa: F401  (bounce mail: processed messages, events)

    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations ("
        " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
    )
    applied: list[str] = []
    for name, fn in MIGRATIONS.items():
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone()
            if not done:
                fn(conn)
                conn.execute("INSERT INTO migrations(name) VALUES (?)", (name,))
                applied.append(name)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied


class transaction:
    """`with transaction(conn):` runs the block in BEGIN IMMEDIATE … COMMIT/ROLLBACK."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
