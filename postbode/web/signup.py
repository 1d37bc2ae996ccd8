"""Sign-up with double opt-in (`/subscribe`, `/confirm/<token>`) and people's own rights
on the preferences page (`/p/<token>/data`, `/p/<token>/forget`).

A POST to /subscribe always answers the same page ("check your mail"), whether the
address is new, pending, subscribed, suppressed or forgotten: nobody can learn from it
who is on the lists. A GET never changes anything: link scanners open confirmation links,
so confirming takes the button's POST. Bots are dropped silently by a hidden honeypot
field and a minimum fill time; the database holds the rate limits for every worker.
Forms on the organisation's own sites ([signup] origins in postbode.toml) may post here,
as a form or as JSON (with CORS for exactly those origins).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, request

from postbode import audience, i18n, tokens
from postbode.audience import signup
from postbode.audience.rights import person_data
from postbode.audience.segments import ListSpec, list_text, self_service_lists
from postbode.errors import AudienceError, PostbodeError
from postbode.web.db import get_db
from postbode.web.pages import choose_locale, locale_name, match_locale, render_page, settings

bp = Blueprint("signup", __name__)

HONEYPOT = "website"          # hidden from people; bots fill in every field
STARTED = "started"           # a signed time the form was shown (for the minimum fill time)
CHECK_MAIL = "check_mail.html"


@dataclass(frozen=True)
class Submitted:
    """The fields of a sign-up, from a form or a JSON body."""

    email: str
    name: str
    locale: str | None
    lists: list[str]
    honeypot: str
    started: str


# ---------------------------------------------------------------- the form

@bp.get("/subscribe")
@bp.get("/subscribe/<list_name>")
def form(list_name: str | None = None) -> Response:
    offered = _offered(list_name)
    locale = choose_locale()
    return _form_page(locale, offered, list_name)


def _form_page(locale: str, offered: dict[str, ListSpec], list_name: str | None, *,
               status: int = 200, invalid: bool = False) -> Response:
    s = settings()
    return render_page(
        "subscribe.html", status=status, locale=locale, lists=_shown_lists(offered, locale),
        locales=[(code, locale_name(code)) for code in s.locales], current_locale=locale,
        started=tokens.sign(s, "web", f="signup"), honeypot=HONEYPOT, invalid=invalid,
        action=f"/subscribe/{list_name}" if list_name else "/subscribe",
        preselect=list_name or (next(iter(offered)) if len(offered) == 1 else None))


def _offered(list_name: str | None) -> dict[str, ListSpec]:
    """The self-service lists the form offers: all of them, or the one in the URL."""
    lists = self_service_lists(settings())
    if list_name is None:
        return lists
    if list_name not in lists:
        abort(404)
    return {list_name: lists[list_name]}


def _shown_lists(offered: dict[str, ListSpec], locale: str) -> list[dict[str, str]]:
    """Each offered list with its consent text in the page language."""
    translations = i18n.load_translations(locale, settings())
    return [{"name": name, "description": spec.description,
             "consent": list_text(translations, "consent", spec.consent) or name}
            for name, spec in offered.items()]


# ---------------------------------------------------------------- the POST

@bp.after_request
def _cors_for_signups(response: Response) -> Response:
    """CORS for the [signup] origins on /subscribe, the preflight (OPTIONS) included."""
    return _cors(response) if request.path.startswith("/subscribe") else response


@bp.post("/subscribe")
@bp.post("/subscribe/<list_name>")
def submit(list_name: str | None = None) -> Response:
    offered = _offered(list_name)
    data = _submitted()
    locale = match_locale(data.locale, settings()) or choose_locale()
    if data.honeypot or _too_fast(data.started):
        return _answer(locale)  # a bot, most likely: the same answer, nothing done
    chosen = data.lists or ([list_name] if list_name else [])
    if not chosen or not set(chosen) <= set(offered) or not _valid_address(data.email):
        if request.is_json:
            return Response(json.dumps({"status": "invalid"}), 400, mimetype="application/json")
        return _form_page(locale, offered, list_name, status=400, invalid=True)
    form_data = signup.SignupForm(
        email=data.email, name=data.name.strip() or None, locale=locale, lists=tuple(sorted(set(chosen))),
        source=_source(chosen), consent_version="+".join(offered[n].consent_version for n in sorted(set(chosen))),
        ip=request.remote_addr or "")
    _ask(form_data)
    return _answer(locale)


def _submitted() -> Submitted:
    if request.is_json:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        lists = body.get("lists") or []
        lists = [lists] if isinstance(lists, str) else [str(x) for x in lists if isinstance(x, str)]
        return Submitted(str(body.get("email") or ""), str(body.get("name") or ""),
                         body.get("locale") if isinstance(body.get("locale"), str) else None,
                         lists, str(body.get(HONEYPOT) or ""), str(body.get(STARTED) or ""))
    f = request.form
    return Submitted(f.get("email", ""), f.get("name", ""), f.get("locale"), f.getlist("lists"),
                     f.get(HONEYPOT, ""), f.get(STARTED, ""))


def _too_fast(started: str) -> bool:
    """Sent back sooner than a person can fill it in. A form without the field (the embeddable
    snippet, JSON) relies on the honeypot and the rate limits."""
    if not started:
        return False
    try:
        shown = tokens.verify(settings(), "web", started, max_age=None)["issued_at"]
    except tokens.InvalidToken:
        return True
    return time.time() - shown < settings().min_fill_seconds


def _valid_address(email: str) -> bool:
    try:
        audience.normalise(email)
    except AudienceError:
        return False
    return True


def _source(chosen: list[str]) -> str:
    """`form:<list>` from our own form, else the host of the site the form is on."""
    origin = request.headers.get("Origin")
    own = origin is None or origin.rstrip("/").lower() == _origin(settings().base_url)
    return f"form:{'+'.join(sorted(set(chosen)))}" if own else (urlsplit(origin).hostname or origin)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _ask(form_data: signup.SignupForm) -> None:
    """Decide and, when it comes to that, send the confirmation mail (logged, never shown)."""
    from postbode.campaign import confirmation

    conn = get_db()
    decision, pending = signup.request(conn, settings(), form_data)
    current_app.logger.info("sign-up for %s: %s", form_data.source, decision)
    if pending is not None:
        confirmation.send(conn, settings(), pending)


def _answer(locale: str) -> Response:
    """The one answer every sign-up gets."""
    if request.is_json:
        return Response(json.dumps({"status": "check your mail"}), 200, mimetype="application/json")
    return render_page(CHECK_MAIL, locale=locale)


def _cors(response: Response) -> Response:
    origin = (request.headers.get("Origin") or "").rstrip("/")
    if origin and origin.lower() in {o.lower() for o in settings().signup_origins}:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Vary"] = "Origin"
    return response


# ---------------------------------------------------------------- confirmation

def _confirmation(token: str) -> tuple[dict | None, bool]:
    """(the token's payload, whether it is too old); (None, False) for a damaged link."""
    try:
        return tokens.verify(settings(), "confirm", token), False
    except tokens.ExpiredToken as err:
        return err.payload, True
    except tokens.InvalidToken:
        return None, False


@bp.get("/confirm/<token>")
def confirm_page(token: str) -> Response:
    """One button: opening the link confirms nothing (link scanners open links)."""
    payload, expired = _confirmation(token)
    if payload is None:
        return _private(render_page("damaged.html", status=400, unsubscribe_address=_contact()))
    form_data = signup.renewal(get_db(), payload.get("s", ""))
    locale = form_data.locale if form_data else None
    if expired or form_data is None or _used(payload.get("s", "")):
        return _private(render_page("confirm_expired.html", status=410, locale=locale, token=token))
    return _private(render_page("confirm.html", locale=locale, lists=list(form_data.lists)))


@bp.post("/confirm/<token>")
def confirm(token: str) -> Response:
    payload, expired = _confirmation(token)
    if payload is None:
        return _private(render_page("damaged.html", status=400, unsubscribe_address=_contact()))
    conn = get_db()
    form_data = signup.renewal(conn, payload.get("s", ""))
    locale = form_data.locale if form_data else None
    if expired or form_data is None:
        return _private(render_page("confirm_expired.html", status=410, locale=locale, token=token))
    try:
        done = signup.confirm(conn, payload["s"], _consent_text(form_data), request.remote_addr or "",
                              settings())
    except signup.SignupLinkUsed:
        return _private(render_page("confirm_expired.html", status=410, locale=locale, token=token))
    _welcome(done)
    return _private(render_page("confirmed.html", locale=done.locale))


def _welcome(done: signup.Confirmed) -> None:
    """The joined lists' welcome newsletters; a problem with one is the operator's, not the reader's."""
    from postbode.campaign import confirmation

    try:
        confirmation.send_welcome(get_db(), settings(), done)
    except PostbodeError as err:
        current_app.logger.error("welcome newsletter not sent: %s", err)


@bp.post("/confirm/<token>/renew")
def renew(token: str) -> Response:
    """An expired or used link's "send me a new one": the same sign-up asked again."""
    payload, _ = _confirmation(token)
    if payload is None:
        return _private(render_page("damaged.html", status=400, unsubscribe_address=_contact()))
    old = signup.renewal(get_db(), payload.get("s", ""))
    if old is not None:
        _ask(signup.SignupForm(old.email, old.name, old.locale, old.lists, old.source,
                               old.consent_version, request.remote_addr or ""))
    return _private(render_page(CHECK_MAIL, locale=old.locale if old else None))


def _used(key: str) -> bool:
    return signup.is_used(get_db(), key)


def _consent_text(form_data: signup.SignupForm) -> str:
    """The consent text the person saw (the list's, in their language)."""
    declared = self_service_lists(settings())
    translations = i18n.load_translations(form_data.locale, settings())
    return "\n".join(list_text(translations, "consent", declared[n].consent)
                      for n in form_data.lists if n in declared and declared[n].consent)


# ---------------------------------------------------------------- own rights

def _person(token: str) -> str | None:
    """The address a preferences token names, as the preferences page looks it up: by the
    subscriber's opaque key (None once they are forgotten), or the address of an older link."""
    try:
        payload = tokens.verify(settings(), "preferences", token)
    except tokens.InvalidToken:
        return None
    if payload["subscriber_key"]:
        return audience.email_for_key(get_db(), payload["subscriber_key"])
    return payload["email"]


@bp.get("/p/<token>/data")
def download(token: str) -> Response:
    """Everything held on this person, as a JSON file (GDPR art. 15)."""
    email = _person(token)
    if email is None:
        return _private(render_page("damaged.html", status=400, unsubscribe_address=_contact()))
    data = person_data(get_db(), email) or {}
    response = Response(json.dumps(data, ensure_ascii=False, indent=2, default=str),
                        mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return _private(response)


@bp.get("/p/<token>/forget")
def forget_page(token: str) -> Response:
    email = _person(token)
    if email is None:
        return _private(render_page("damaged.html", status=400, unsubscribe_address=_contact()))
    return _private(render_page("forget.html", locale=_locale_of(email), email=email))


@bp.post("/p/<token>/forget")
def forget(token: str) -> Response:
    """Erase the person: the same erasure as `subscribers forget` (GDPR art. 17)."""
    email = _person(token)
    if email is None:
        return _private(render_page("damaged.html", status=400, unsubscribe_address=_contact()))
    from postbode import erasure  # the erasure `subscribers forget` does: tables, journal, files

    locale = _locale_of(email)
    erasure.forget(get_db(), email, settings(), source="web forget")
    return _private(render_page("forgotten.html", locale=locale))


def _locale_of(email: str) -> str | None:
    subscriber = audience.get_subscriber(get_db(), email)
    return match_locale(subscriber.locale, settings()) if subscriber else None


def _contact() -> str:
    s = settings()
    return s.unsubscribe_mailto or s.reply_to or s.sender_email


def _private(response: Response) -> Response:
    """Pages about one person: never cached, never indexed, the token never sent on."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
