"""`GET /healthz`: whether the app can reach its state database, for load balancers and monitors."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from postbode import store
from postbode.errors import PostbodeError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 with the schema revision when the database answers, 503 (no details) when not."""
    try:
        conn = store.connect(current_app.config["POSTBODE_SETTINGS"], migrate=False,
                             read_only=bool(current_app.config.get("READ_ONLY")))
        try:
            revision = store.current(conn)
        finally:
            conn.close()
    except (PostbodeError, SQLAlchemyError) as err:
        current_app.logger.warning("health check: the state database is unreachable: %s", err)
        return _no_store(jsonify(status="unavailable")), 503
    return _no_store(jsonify(status="ok", schema=revision)), 200


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response
