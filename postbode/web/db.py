"""The state database, one connection per request (kept on `flask.g`), migrated once at start-up."""
from __future__ import annotations

from flask import Flask, current_app, g

from postbode import store


def get_db() -> store.Connection:
    """The request's connection to the state database, opened on first use (never migrating)."""
    if "db" not in g:
        # a read-only app (preview, archive) cannot change the state, even by mistake
        g.db = store.connect(current_app.config["POSTBODE_SETTINGS"], migrate=False,
                             read_only=bool(current_app.config.get("READ_ONLY")))
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
