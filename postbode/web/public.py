"""Public pages: the archive index, web versions of each newsletter, and the "manage" explanation."""
from __future__ import annotations

from urllib.parse import quote

from babel.dates import format_date
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request, send_from_directory
from werkzeug.utils import safe_join

from postbode import i18n
from postbode.config import Settings
from postbode.content import Newsletter, images
from postbode.errors import PostbodeError
from postbode.web.pages import choose_locale, locale_name, match_locale, render_page, settings
from postbode.web.publication import archive_locales, is_public, may_see_view
from postbode.web.versions import (WebLinks, WebVersion, list_newsletters, load_or_none,
                                   newsletter_path, render_web_version, views_of)

bp = Blueprint("public", __name__)

# A web version may show images from the newsletter's own https links.
WEB_VERSION_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
                      "frame-ancestors 'self'; base-uri 'none'; form-action 'none'")
CACHE_SIZE = 64


@bp.get("/")
def index() -> Response:
    """Every newsletter, newest first, with a link per language."""
    s = settings()
    locale = choose_locale()
    entries = [{
        "id": newsletter.id,
        "date": newsletter.date,
        "date_text": format_date(newsletter.date, "long", locale=locale),
        "subject": newsletter.subject,
        "versions": [(code, locale_name(code)) for code in archive_locales(newsletter, s)],
    } for newsletter in list_newsletters(s) if is_public(newsletter)]
    return render_page("index.html", locale=locale, newsletters=entries,
                       source_lang=s.source_locale.replace("_", "-"))


@bp.get("/manage", strict_slashes=False)
@bp.get("/manage/<locale>", strict_slashes=False)
def manage(locale: str | None = None) -> Response:
    """Where a web version's unsubscribe and preferences links lead: how to manage a subscription."""
    return render_page("manage.html", locale=match_locale(locale, settings()))


@bp.get("/v/<newsletter_id>/<locale>", strict_slashes=False)
@bp.get("/v/<newsletter_id>/<locale>/<view>", strict_slashes=False)
def web_version(newsletter_id: str, locale: str, view: str | None = None) -> Response:
    """The mail as a web page, for one locale and (optionally) one segment view.

    The public view of a sent or published newsletter is for anyone; a segment's
    view only with the token its mails link it with (`?t=`), else 404.
    """
    newsletter, locale = _find(newsletter_id, locale, view)
    token = request.args.get("t") if view is not None else None
    if view is None and not is_public(newsletter):
        abort(404)
    if view is not None and not may_see_view(settings(), newsletter_id, view, token):
        abort(404)
    try:
        version = cached_version(newsletter, locale, view, token)
    except PostbodeError as err:
        current_app.logger.warning("web version %s/%s/%s: %s", newsletter_id, locale, view, err)
        abort(404)
    response = Response(version.html, mimetype="text/html")
    response.headers["Content-Language"] = version.lang
    response.headers["Content-Security-Policy"] = WEB_VERSION_POLICY
    if view is None:
        response.headers["Cache-Control"] = "public, max-age=300"
    else:  # one segment's edition, opened by its readers' link: not for search engines or others
        response.headers["Cache-Control"] = "private, no-store"
        response.headers["X-Robots-Tag"] = "noindex"
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/images/<path:name>")
def image(name: str) -> Response:
    """Images of the newsletters (newsletters/images/), as the mails link them: resized as sent."""
    folder = settings().newsletters_dir / "images"
    response = send_from_directory(folder, name, max_age=86400)  # 404 for unknown or unsafe names
    if response.status_code == 200 and response.mimetype.startswith("image/"):
        response.direct_passthrough = False
        response.set_data(images.for_mail(Path(safe_join(str(folder), name))).data)
    return response


def _find(newsletter_id: str, locale: str, view: str | None) -> tuple[Newsletter, str]:
    """The newsletter and the configured locale asked for; 404 when either, or the view, is unknown."""
    s = settings()
    path = newsletter_path(s, newsletter_id)
    code = served_locale(locale, s)
    if path is None or code is None:
        abort(404)
    newsletter = load_or_none(path)
    if newsletter is None:
        abort(404)
    if view is not None and view not in views_of(newsletter):
        abort(404)
    return newsletter, code


def served_locale(locale: str, s: Settings) -> str | None:
    """`locale` when it is a well-formed locale whose language we send in (nl, nl_BE, de_AT …)."""
    parsed = i18n.parse_locale(locale)
    if parsed is None or str(parsed) != locale or match_locale(locale, s) is None:
        return None
    return locale


def cached_version(newsletter: Newsletter, locale: str, view: str | None,
                   token: str | None = None) -> WebVersion:
    """A web version, rendered once per (newsletter, its file's version, locale, view, links)."""
    links = web_links(newsletter.id, locale, view, token)
    stamp = newsletter.source_path.stat().st_mtime_ns if newsletter.source_path else 0
    key = (newsletter.id, stamp, locale, view, links)
    cache: dict = current_app.extensions.setdefault("postbode_web_versions", {})
    if key not in cache:
        if len(cache) >= CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = render_web_version(settings(), newsletter, locale, view, links)
    return cache[key]


def web_links(newsletter_id: str, locale: str, view: str | None,
              token: str | None = None) -> WebLinks:
    """The links in a web version, from `base_url`: never from the request's Host header."""
    base = settings().base_url
    parts = ["v", newsletter_id, locale] + ([view] if view else [])
    here = f"{base}/" + "/".join(quote(part, safe="") for part in parts)
    if view and token:
        here += f"?t={quote(token, safe='')}"  # the segment view links to itself as its mail did
    return WebLinks(web=here, manage=f"{base}/manage/{quote(locale, safe='')}")

