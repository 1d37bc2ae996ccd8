"""The state database, one connection per request (kept on `flask.g`), migrated once at start-up."""
from __future__ import annotations

from flask import Flask, current_app, g

from postbode import store

# How long a web request waits for another program's write lock before answering 503 with
# Retry-After (the reader's browser or the mail provider tries again); an import or a send
# holds the lock for a fraction of a second at a time.
BUSY_TIMEOUT = 2.0


def get_db() -> store.Connection:
    """The request's connection to the state database, opened on first use (never migrating)."""
    if "db" not in g:
        # a read-only app (preview, archive) cannot change the state, even by mistake
        read_only = bool(current_app.config.get("READ_ONLY"))
        g.db = store.connect(current_app.config["POSTBODE_SETTINGS"], migrate=False,
                             read_only=read_only)
        if not read_only:
            store.wait_briefly(g.db, current_app.config.get("BUSY_TIMEOUT", BUSY_TIMEOUT))
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    """Close the request's connection, if one was opened."""
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask) -> None:
    """Bring the database to the newest schema now, so no request ever runs a migration.

    A read-only app (preview, archive) leaves the database as it is.
    """
    if not app.config.get("READ_ONLY"):
        store.connect(app.config["POSTBODE_SETTINGS"]).close()
    app.teardown_appcontext(close_db)
