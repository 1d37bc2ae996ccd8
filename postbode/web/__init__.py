"""The subscriber-facing web app: web versions, unsubscribe, preferences, and (on request) previews.

`create_app` builds a Flask app around one `Settings`. The public app refuses
to start without a real signing key (`tokens.require_production_key`), so a
WSGI server reports a missing key at start-up rather than a 500 per unsubscribe.

A read-only app (`READ_ONLY`, always for `PREVIEW`) serves only pages that
change nothing: no `/u/`, `/p/` or webhook route, and the database opened
read-only. The preview blueprint is only registered when asked for
(`serve --preview` or `test_config={"PREVIEW": True}`), never on the public app.
"""
from __future__ import annotations

from typing import Any, Mapping

from flask import Flask

from postbode import tokens
from postbode.config import Settings, load_settings
from postbode.web import db, guard, health, hooks, pages, preview, public, signup, subscription, webhooks


def create_app(settings: Settings | None = None, test_config: Mapping[str, Any] | None = None) -> Flask:
    """The app factory: one app per settings object; `test_config` overrides Flask config keys."""
    settings = settings or load_settings()
    app = Flask(__name__, static_folder=None)
    app.config.update(
        POSTBODE_SETTINGS=settings,
        PREVIEW=False,
        READ_ONLY=False,
        MAX_CONTENT_LENGTH=64 * 1024,  # forms here are tiny; refuse anything big
        SESSION_COOKIE_HTTPONLY=True,
    )
    if test_config:
        app.config.update(test_config)
    app.config["READ_ONLY"] = bool(app.config["READ_ONLY"] or app.config["PREVIEW"])
    if not app.config["READ_ONLY"]:
        tokens.require_production_key(settings)
    guard.setup(app)
    pages.setup(app)
    db.init_app(app)
    _register_blueprints(app)
    return app


def _register_blueprints(app: Flask) -> None:
    app.register_blueprint(public.bp)
    app.register_blueprint(health.bp)
    if not app.config["READ_ONLY"]:
        # the only routes that act on a person or write state
        app.register_blueprint(subscription.bp)
        app.register_blueprint(signup.bp)    # /subscribe, /confirm/<token>, own-rights pages
        app.register_blueprint(webhooks.bp)
        app.register_blueprint(hooks.bp)   # /webhooks/ses, brevo, mailjet, sendgrid
    if app.config["PREVIEW"]:
        app.register_blueprint(preview.bp)
