"""Preview for fundraisers and translators: the source and one locale side by side, per segment view.

Registered only when the app is created with PREVIEW on (`serve --preview`,
`preview NEWSLETTER`), never on the public app. It renders through the same
functions as the web version, which are the functions sending uses.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, request

from postbode.errors import PostbodeError
from postbode.web.pages import locale_name, match_locale, render_page, settings
from postbode.web.public import WEB_VERSION_POLICY, _find, cached_version
from postbode.web.versions import WebVersion, views_of

bp = Blueprint("preview", __name__, url_prefix="/preview")


@bp.get("/<newsletter_id>")
def preview(newsletter_id: str) -> Response:
    """The picker, the two versions side by side, the plain text and the fields that fell back."""
    s = settings()
    locale = match_locale(request.args.get("locale"), s) or s.default_locale
    view = request.args.get("view") or None
    newsletter, _ = _find(newsletter_id, s.source_locale, view)
    version, problem = _try(newsletter, locale, view)
    return render_page(
        "preview.html", locale=s.source_locale, newsletter=newsletter, version=version,
        problem=problem, chosen_locale=locale, chosen_view=view or "",
        source_locale=s.source_locale,
        locales=[(code, locale_name(code)) for code in s.locales],
        views=views_of(newsletter),
    )


@bp.get("/<newsletter_id>/frame")
def frame(newsletter_id: str) -> Response:
    """One version as it appears in a mail client, for the preview's frames."""
    s = settings()
    locale = match_locale(request.args.get("locale"), s)
    if locale is None:
        abort(404)
    view = request.args.get("view") or None
    newsletter, _ = _find(newsletter_id, locale, view)
    version, problem = _try(newsletter, locale, view)
    if version is None:
        return Response(problem, status=422, mimetype="text/plain")
    response = Response(version.html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = WEB_VERSION_POLICY
    return response


def _try(newsletter, locale: str, view: str | None) -> tuple[WebVersion | None, str]:
    """The version, or the error a translator or fundraiser needs to see."""
    try:
        return cached_version(newsletter, locale, view), ""
    except PostbodeError as err:
        return None, str(err)
