"""Preview, the fundraiser's workbench: the mail of one segment in two languages, live.

Registered only when the app is created with PREVIEW on (`serve --preview`,
`preview NEWSLETTER`), never on the public app. It builds the very mail a
sample reader of the chosen segment would get (`build.build_variants`,
`build.prepare_all`, `message.build`: the functions sending uses), so the greeting,
the checks and the size are the real ones. A problem in the YAML, a template or
a catalog is shown in the page with the last good render beside it, and the page
reloads by itself when one of those files changes (a small script polls
`/preview/<id>/stamp`; no build step).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request, url_for

from postbode import build, i18n, message
from postbode.config import Settings
from postbode.errors import InputError, PostbodeError
from postbode.audience.segments import load_segments
from postbode.web.pages import PAGE_POLICY, locale_name, match_locale, render_page, settings
from postbode.web.public import WEB_VERSION_POLICY
from postbode.web.versions import newsletter_path

bp = Blueprint("preview", __name__, url_prefix="/preview")

# In a translation's frame, text still in the source language stands out.
UNTRANSLATED_STYLE = ('<style>[lang="{lang}"]:not(html) {{ outline: 2px dashed #b35c00; '
                      'outline-offset: 2px; background: #fff4e5; }}</style>')

# The preview page runs one script of our own (the reload poll); mails never run any.
PREVIEW_POLICY = PAGE_POLICY + "; script-src 'self'; connect-src 'self'"
POLL_MILLISECONDS = 250
PHONE_WIDTH = 375
SHOWN_HEADERS = ("From", "Reply-To", "To", "Subject", "List-Unsubscribe", "Content-Language")
DARK_RULES = re.compile(r"@media\s*\(prefers-color-scheme:\s*dark\)")
RELOAD_SCRIPT = """\
(() => {
  const me = document.currentScript, url = me.dataset.url, seen = me.dataset.stamp;
  const poll = () => fetch(url, {cache: "no-store"}).then(r => r.text())
    .then(stamp => { if (stamp !== seen) { location.reload(); } else { setTimeout(poll, %d); } })
    .catch(() => setTimeout(poll, %d));
  setTimeout(poll, %d);
})();
""" % (POLL_MILLISECONDS, POLL_MILLISECONDS * 4, POLL_MILLISECONDS)


@dataclass(frozen=True)
class PreviewMail:
    """The mail one sample reader of a segment gets, as the preview shows it."""

    html: str
    text: str
    headers: tuple[tuple[str, str], ...]
    html_bytes: int
    fallbacks: tuple[str, ...]


@dataclass(frozen=True)
class Attempt:
    """The mail as the files are now, or their problems and the last mail that built."""

    mail: PreviewMail | None
    problems: tuple[str, ...]
    last_good: PreviewMail | None

    @property
    def shown(self) -> PreviewMail | None:
        return self.mail or self.last_good


@bp.get("/<newsletter_id>")
def preview(newsletter_id: str) -> Response:
    """The picker and switches, the two mails side by side, their problems, headers, size and text."""
    s = settings()
    locale = match_locale(request.args.get("locale"), s) or s.default_locale
    segment = _segment_name(request.args.get("segment"), s)
    path = _path(newsletter_id)
    switches = {"width": _choice("width", ("desktop", "phone")), "scheme": _choice("scheme", ("light", "dark"))}
    chosen = _attempt(s, newsletter_id, path, locale, segment)
    source = _attempt(s, newsletter_id, path, s.source_locale, segment)
    response = render_page(
        "preview.html", locale=s.source_locale, newsletter_id=newsletter_id, attempt=chosen,
        problems=list(dict.fromkeys(source.problems + chosen.problems)),
        chosen_locale=locale, chosen_segment=segment or "", source_locale=s.source_locale,
        blocked=bool(chosen.shown and chosen.shown.fallbacks and _required(locale)),
        locales=[(code, locale_name(code)) for code in s.locales], segments=_segments(s),
        switches=switches, phone_width=PHONE_WIDTH, clip_bytes=build.GMAIL_CLIP_BYTES,
        shown_headers=SHOWN_HEADERS, stamp=fingerprint(s, path),
        frame=lambda code: url_for("preview.frame", newsletter_id=newsletter_id, locale=code,
                                   segment=segment or "", scheme=switches["scheme"]),
        switch=lambda name, value: url_for("preview.preview", newsletter_id=newsletter_id,
                                           **{**request.args.to_dict(), name: value}),
    )
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<newsletter_id>/frame")
def frame(newsletter_id: str) -> Response:
    """One mail as it appears in a mail client (the last good one while the files have a problem)."""
    s = settings()
    locale = match_locale(request.args.get("locale"), s)
    if locale is None:
        abort(404)
    attempt = _attempt(s, newsletter_id, _path(newsletter_id), locale,
                       _segment_name(request.args.get("segment"), s))
    if attempt.shown is None:
        return Response("\n".join(attempt.problems), status=422, mimetype="text/plain")
    html = attempt.shown.html
    if request.args.get("scheme") == "dark":  # what a client in dark mode applies
        html = DARK_RULES.sub("@media all", html)
    if locale != s.source_locale and attempt.shown.fallbacks:
        html = html.replace("</head>", UNTRANSLATED_STYLE.format(lang=s.source_locale) + "</head>", 1)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = WEB_VERSION_POLICY
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<newsletter_id>/stamp")
def stamp(newsletter_id: str) -> Response:
    """A fingerprint of every file the preview depends on; it changes when one of them does."""
    response = Response(fingerprint(settings(), _path(newsletter_id)), mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/reload.js")
def reload_script() -> Response:
    return Response(RELOAD_SCRIPT, mimetype="text/javascript")


def fingerprint(s: Settings, path: Path) -> str:
    """Content of the newsletter file, and size and time of templates, catalogs and segments.yaml."""
    digest = hashlib.sha256(path.read_bytes() if path.is_file() else b"")
    watched = [*_files(s.templates_dir), *_files(s.root / "locales", "*.po"), Path(s.segments_file)]
    for file in watched:
        try:
            info = file.stat()
        except OSError:
            continue
        digest.update(f"{file}:{info.st_mtime_ns}:{info.st_size}\n".encode("utf-8", "replace"))
    return digest.hexdigest()[:16]


def _files(folder: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in folder.rglob(pattern) if p.is_file()) if folder.is_dir() else []


def _path(newsletter_id: str) -> Path:
    path = newsletter_path(settings(), newsletter_id)
    if path is None:
        abort(404)
    return path


def _choice(name: str, allowed: tuple[str, ...]) -> str:
    value = request.args.get(name)
    return value if value in allowed else allowed[0]


def _segments(s: Settings) -> list[str]:
    try:
        return list(load_segments(s))
    except PostbodeError:
        return []


def _segment_name(given: str | None, s: Settings) -> str | None:
    """The segment asked for (None: the public view); an unknown one is a 404."""
    if not given:
        return None
    if given not in _segments(s):
        abort(404)
    return given


def _attempt(s: Settings, newsletter_id: str, path: Path, locale: str, segment: str | None) -> Attempt:
    """The mail for (locale, segment), built once per version of the files."""
    cache: dict = current_app.extensions.setdefault("postbode_preview", {"by_stamp": {}, "good": {}})
    key = (newsletter_id, locale, segment)
    stamped = (fingerprint(s, path), *key)
    if stamped not in cache["by_stamp"]:
        if len(cache["by_stamp"]) > 64:
            cache["by_stamp"].clear()
        try:
            mail, problems = _build(s, path, locale, segment), ()
            cache["good"][key] = mail
        except PostbodeError as err:
            mail, problems = None, _problems(err)
        cache["by_stamp"][stamped] = (mail, problems)
    mail, problems = cache["by_stamp"][stamped]
    return Attempt(mail, problems, cache["good"].get(key))


def _problems(err: PostbodeError) -> tuple[str, ...]:
    """Each problem as `check` lists it: file:line:column: field: what to do."""
    if isinstance(err, InputError):
        return tuple(str(p) for p in err.problems)
    return (str(err),)


def _build(s: Settings, path: Path, locale: str, segment: str | None) -> PreviewMail:
    """The mail of a sample reader of the segment: rendered, checked, prepared and built as sent."""
    view, formality = build.segment_reading(segment, s)
    # A `require` language still being translated is shown as work in progress.
    with i18n.work_in_progress():
        result = build.build_variants(path, [locale], [view], s)
    key = (locale, view)
    prepared = build.prepare_all(result, s)[key]
    reader = build.sample_recipient(locale, view, formality, segment)
    mail = message.build(prepared, reader, f"preview:{result.newsletter.id}:{build.variant_name(*key)}", s)
    return PreviewMail(html=mail.html, text=mail.text, headers=tuple(mail.headers),
                       html_bytes=len(mail.html.encode("utf-8")), fallbacks=result.fallbacks.get(locale, ()))


def _required(locale: str) -> bool:
    """Whether the locale must be complete before it may be sent."""
    s = settings()
    return i18n.policy_for(locale, i18n.locale_chain(locale, s)[0], s) == "require"
