"""Unsubscribe (`/u/<token>`, including RFC 8058 one-click) and preferences (`/p/<token>`).

The signed token in the URL is the only proof of who is asking, so these
routes need no session, cookie or CSRF token: a mail provider's one-click POST
carries none. A browser's POST from another site is refused before it gets
here (`guard`). A GET never changes anything (link scanners prefetch links).
An expired preferences link offers to ask for a fresh one (`/p/<token>/renew`).
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from postbode import audience, tokens
from postbode.audience.segments import self_service_lists
from postbode.web import renewal
from postbode.web.db import get_db
from postbode.web.pages import locale_name, match_locale, render_page, settings

bp = Blueprint("subscription", __name__)

SOURCE = "web"
# A genuine link of a person no longer in the database (forgotten): nothing to show or change.
FORGOTTEN = ""
FORMALITIES = ("formal", "informal")


@bp.get("/u/<token>")
def confirm_unsubscribe(token: str) -> Response:
    """One button; nothing happens until it is pressed."""
    email = _email_from(token, "unsubscribe")
    if email is None:
        return _damaged()
    subscriber = audience.get_subscriber(get_db(), email) if email else None
    return _private(render_page(
        "unsubscribe.html", locale=_locale_of(subscriber), formal=_formal(subscriber), email=email,
        already=subscriber is None or subscriber.consent != "subscribed",
    ))


@bp.post("/u/<token>")
def unsubscribe(token: str) -> Response:
    """The button's POST and the RFC 8058 one-click POST (`List-Unsubscribe=One-Click`)."""
    email = _email_from(token, "unsubscribe")
    if email is None:
        return _damaged()
    conn = get_db()
    subscriber = audience.get_subscriber(conn, email) if email else None
    if email:
        _unsubscribe(conn, email)
    if request.form.get("List-Unsubscribe") == "One-Click":
        return Response("unsubscribed\n", status=200, mimetype="text/plain")
    return _private(render_page("unsubscribed.html", locale=_locale_of(subscriber),
                                formal=_formal(subscriber), email=email))


@bp.get("/p/<token>")
def preferences(token: str) -> Response:
    email = _email_from(token, "preferences")
    if email is None:
        return _damaged_or_expired(token)
    return _preferences_page(email)


@bp.post("/p/<token>/renew")
def renew(token: str) -> Response:
    """An expired preferences link's "send me a new one" button: mails a fresh link.

    The answer is the same whether a link was mailed, one was mailed within the hour,
    or the person is no longer known, so the page tells a visitor nothing about anyone.
    """
    email = _email_from(token, "preferences", max_age=None)
    if email is None:
        return _damaged()
    subscriber = audience.get_subscriber(get_db(), email) if email else None
    locale, formal = _locale_of(subscriber) or settings().default_locale, _formal(subscriber)
    if email:
        renewal.request_fresh_link(get_db(), settings(), email, locale, formal)
    return _private(render_page("renewal_requested.html", locale=locale, formal=formal))


@bp.post("/p/<token>")
def save_preferences(token: str) -> Response:
    """Save language, formality and lists, or unsubscribe from everything."""
    email = _email_from(token, "preferences")
    if email is None:
        return _damaged_or_expired(token)
    conn = get_db()
    subscriber = audience.get_subscriber(conn, email) if email else None
    if subscriber is None:
        return _preferences_page(email)
    if request.form.get("action") == "unsubscribe":
        _unsubscribe(conn, email)
        return _private(render_page("unsubscribed.html", locale=_locale_of(subscriber),
                                    formal=_formal(subscriber), email=email))
    choice = _read_form(conn)
    if choice is None:  # a list nobody may join themselves, or a value not offered: nothing changes
        return _preferences_page(email, status=400, invalid=True)
    locale, formality, chosen = choice
    lists = lists_after(subscriber, chosen)
    if match_locale(subscriber.locale, settings()) == locale:
        locale = None  # same language: keep a regional locale such as nl_BE
    changed = audience.update_preferences(conn, email, locale=locale, formality=formality,
                                          lists=lists, source=SOURCE)
    return _preferences_page(email, saved=True, changed=changed)


def _unsubscribe(conn, email: str) -> None:
    """Unsubscribe once; a repeated click or provider retry changes and records nothing more."""
    if not audience.is_suppressed(conn, email):
        audience.unsubscribe(conn, email, SOURCE)


def _read_form(conn) -> tuple[str, str, list[str]] | None:
    """The submitted choices, or None when one is not among those offered."""
    s = settings()
    locale = request.form.get("locale", "")
    formality = request.form.get("formality", "")
    lists = request.form.getlist("lists")
    if locale not in s.locales or formality not in FORMALITIES:
        return None
    if not set(lists) <= set(offered_lists()):
        return None
    return locale, formality, sorted(set(lists))


def offered_lists() -> list[str]:
    """The lists a person may join or leave here: the self-service lists of segments.yaml."""
    return sorted(self_service_lists(settings()))


def lists_after(subscriber: audience.Subscriber, chosen: list[str]) -> list[str]:
    """The person's lists after choosing among the offered ones; lists they cannot choose stay."""
    offered = set(offered_lists())
    return sorted(set(chosen) | {name for name in subscriber.lists if name not in offered})


def _preferences_page(email: str, *, status: int = 200, **flags: object) -> Response:
    conn = get_db()
    subscriber = audience.get_subscriber(conn, email) if email else None
    if subscriber is None:
        return _private(render_page("unknown_subscriber.html", status=404, email=email))
    s = settings()
    return _private(render_page(
        "preferences.html", status=status, locale=_locale_of(subscriber),
        formal=_formal(subscriber), email=email,
        subscriber=subscriber,
        current_locale=match_locale(subscriber.locale, s) or s.default_locale,
        locales=[(code, locale_name(code)) for code in s.locales],
        all_lists=offered_lists(),
        saved=flags.get("saved", False), invalid=flags.get("invalid", False),
    ))


def _email_from(token: str, purpose: str, **max_age: int | None) -> str | None:
    """The address of the person a valid token names; None when the link is damaged or expired.

    A token carries the subscriber's opaque key, looked up here; `FORGOTTEN` ("") when
    nobody has that key any more. Tokens in mail sent before keys existed carry the
    address itself, and keep working.
    """
    try:
        payload = tokens.verify(settings(), purpose, token, **max_age)
    except tokens.InvalidToken:
        return None
    if payload["subscriber_key"]:
        return audience.email_for_key(get_db(), payload["subscriber_key"]) or FORGOTTEN
    return payload["email"]


def _damaged_or_expired(token: str) -> Response:
    """A genuine preferences link that is only too old offers a fresh one; anything else is damaged."""
    email = _email_from(token, "preferences", max_age=None)
    if email is None:
        return _damaged()
    subscriber = audience.get_subscriber(get_db(), email) if email else None
    return _private(render_page("expired.html", status=410, locale=_locale_of(subscriber),
                                formal=_formal(subscriber),
                                renew_url=f"{settings().base_url}/p/{token}/renew"))


def _locale_of(subscriber: audience.Subscriber | None) -> str | None:
    return match_locale(subscriber.locale, settings()) if subscriber else None


def _formal(subscriber: audience.Subscriber | None) -> bool:
    """Whether the page says "u", as the mail does: the person's stored form of address, else formal."""
    formality = subscriber.formality if subscriber else None
    return (formality or audience.DEFAULT_FORMALITY) == "formal"


def _damaged() -> Response:
    s = settings()
    return _private(render_page("damaged.html", status=400,
                                unsubscribe_address=s.unsubscribe_mailto or s.reply_to or s.sender_email))


def _private(response: Response) -> Response:
    """Pages about one person: never cached, never indexed."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    # the token in the URL must not travel on; modern browsers still send
    # Sec-Fetch-Site with it, which is what the cross-site check reads first
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
