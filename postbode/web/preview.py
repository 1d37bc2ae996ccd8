"""Preview for fundraisers and translators: the source and one locale side by side, per segment view.

Registered only when the app is created with PREVIEW on (`serve --preview`,
`preview NEWSLETTER`), never on the public app. It renders through the same
functions as the web version, which are the functions sending uses.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, request

from postbode import i18n
from postbode.errors import PostbodeError
from postbode.web.pages import locale_name, match_locale, render_page, settings
from postbode.web.public import WEB_VERSION_POLICY, _find, web_links
from postbode.web.versions import WebVersion, render_web_version, views_of

# In a translation's frame, text still in the source language stands out.
UNTRANSLATED_STYLE = ('<style>[lang="{lang}"]:not(html) {{ outline: 2px dashed #b35c00; '
                      'outline-offset: 2px; background: #fff4e5; }}</style>')

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
        blocked=version is not None and version.fallbacks and _required(locale),
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
    html = version.html
    if locale != s.source_locale and version.fallbacks:
        html = html.replace("</head>", UNTRANSLATED_STYLE.format(lang=s.source_locale) + "</head>", 1)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = WEB_VERSION_POLICY
    return response


def _try(newsletter, locale: str, view: str | None) -> tuple[WebVersion | None, str]:
    """The version, or the error a translator or fundraiser needs to see.

    A `require` locale still being translated is shown as work in progress
    (never cached: the public web version must not be this one).
    """
    try:
        with i18n.work_in_progress():
            return render_web_version(settings(), newsletter, locale, view,
                                      web_links(newsletter.id, locale, view)), ""
    except PostbodeError as err:
        return None, str(err)


def _required(locale: str) -> bool:
    s = settings()
    return i18n.policy_for(locale, i18n.locale_chain(locale, s)[0], s) == "require"
