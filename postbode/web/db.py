"""The state database, one connection per request (kept on `flask.g`)."""
from __future__ import annotations

import sqlite3

from flask import Flask, current_app, g

from postbode import db


def get_db() -> sqlite3.Connection:
    """The request's connection to the state database, opened on first use."""
    if "db" not in g:
        path = current_app.config["POSTBODE_SETTINGS"].database
        # a read-only app (preview, archive) cannot change the state, even by mistake
        g.db = (sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
                if current_app.config.get("READ_ONLY") else db.connect(path))
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    """Close the request's connection, if one was opened."""
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
