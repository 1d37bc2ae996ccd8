"""What every page shares: the page locale, its translations, the Jinja setup and safe headers."""
from __future__ import annotations

from typing import Any

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations
from flask import Flask, Response, current_app, g, make_response, render_template, request
from jinja2 import FileSystemLoader, StrictUndefined
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from postbode import i18n
from postbode.config import Settings
from postbode.errors import PostbodeError

# Our own pages carry no script and load nothing from elsewhere.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "frame-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
)
# How long a reader's browser or a provider waits before trying a busy database again.
RETRY_AFTER = "5"


def settings() -> Settings:
    return current_app.config["POSTBODE_SETTINGS"]


def setup(app: Flask) -> None:
    """Point Flask's Jinja at templates/web/ with gettext, and add the shared hooks."""
    s: Settings = app.config["POSTBODE_SETTINGS"]
    app.jinja_options = {**app.jinja_options, "extensions": ["jinja2.ext.i18n"],
                         "undefined": StrictUndefined}
    app.jinja_loader = FileSystemLoader(str(s.templates_dir / "web"))
    env = app.jinja_env
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda message: _translations().ugettext(message),
        ngettext=lambda one, many, n: _translations().ungettext(one, many, n),
        pgettext=lambda ctx, message: _translations().upgettext(ctx, message),
        npgettext=lambda ctx, one, many, n: _translations().unpgettext(ctx, one, many, n),
        newstyle=True,
    )
    app.after_request(_safe_headers)
    app.register_error_handler(404, lambda _e: render_page("not_found.html", status=404))
    app.register_error_handler(405, _not_allowed)
    app.register_error_handler(413, lambda _e: render_page("not_found.html", status=413))
    app.register_error_handler(PostbodeError, _unavailable)
    app.register_error_handler(OperationalError, _busy)


def choose_locale(preferred: str | None = None) -> str:
    """The page locale: `preferred` (a subscriber's or ?lang=) if we have it, else the browser's, else the default."""
    s = settings()
    for candidate in (preferred, request.args.get("lang")):
        match = match_locale(candidate, s)
        if match:
            return match
    return request.accept_languages.best_match(s.locales) or s.default_locale


def match_locale(candidate: str | None, s: Settings) -> str | None:
    """`candidate` if it is one of the configured locales, or its language is."""
    if not candidate:
        return None
    candidate = candidate.replace("-", "_")
    if candidate in s.locales:
        return candidate
    language = candidate.split("_")[0].lower()
    return language if language in s.locales else None


def use_locale(locale: str) -> None:
    """Make `locale` the language of this request's page."""
    g.locale = locale
    g.translations = i18n.load_translations(locale, settings())


def _translations() -> NullTranslations:
    if "translations" not in g:
        use_locale(choose_locale())
    return g.translations


def page_context(locale: str) -> dict[str, Any]:
    """Variables every page template can use."""
    s = settings()
    return {
        "lang": locale.replace("_", "-"),
        "dir": i18n.direction_of(locale),
        "organisation": s.organisation_name or s.sender_name,
        "postal_address": s.postal_address,
        "website": s.website,
        "contact_email": s.reply_to or s.sender_email,
    }


def locale_name(locale: str) -> str:
    """A locale's name in its own language, e.g. "Deutsch", "العربية"."""
    try:
        name = Locale.parse(locale).get_display_name(locale) or locale
    except (ValueError, UnknownLocaleError):
        return locale
    return name[:1].upper() + name[1:]


def render_page(template: str, *, status: int = 200, locale: str | None = None,
                **context: Any) -> Response:
    """Render one of our pages in the page locale, with lang/dir and Content-Language set."""
    if locale is not None or "locale" not in g:
        use_locale(locale or choose_locale())
    response = make_response(render_template(template, **page_context(g.locale), **context), status)
    response.headers["Content-Language"] = g.locale.replace("_", "-")
    return response


def _unavailable(err: PostbodeError) -> Response:
    """A setup problem (database, signing key): logged for the operator, a calm page for the reader."""
    current_app.logger.error("%s", err)
    return render_page("unavailable.html", status=500)


def _not_allowed(err: HTTPException) -> Response:
    """405 with the methods the URL does take (`Allow`), as HTTP asks."""
    response = render_page("not_found.html", status=405)
    allowed = getattr(err, "valid_methods", None)
    if allowed:
        response.headers["Allow"] = ", ".join(sorted(allowed))
    return response


def _busy(err: OperationalError) -> Response:
    """A locked database is a moment's wait: 503 + Retry-After (providers retry), never a 500."""
    if not any(word in str(err) for word in ("locked", "busy", "lock timeout")):  # SQLite, PostgreSQL
        raise err
    current_app.logger.warning("database busy, answered 503: %s", err)
    response = render_page("unavailable.html", status=503)
    response.headers["Retry-After"] = RETRY_AFTER
    return response


def _safe_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    # Subscription links carry tokens: never send them on to another site. (Not
    # no-referrer: browsers then send `Origin: null`, which the cross-site check refuses.)
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
