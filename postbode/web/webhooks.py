"""Bounce and complaint webhooks: `POST /webhooks/postmark` and `POST /webhooks/mailgun`.

A provider's API accepts a mail at once; that the address does not exist, or
that the recipient marked the mail as spam, it learns minutes later and POSTs
an event here. This module authenticates the request and parses it into a
`postbode.feedback.Event`; `feedback.apply_event` changes the state (suppression,
journal note), once per event.

Providers retry until they get a 2xx; events we do not act on are answered 200
so they are not retried forever. Secrets come from the environment and are
never logged; neither are addresses (only their hash).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
import time
from typing import Any, Mapping

from flask import Blueprint, Response, current_app, jsonify, request

from postbode import store
from postbode.feedback import MAX_TEXT, Action, Event, apply_event, remember_token
from postbode.web.db import get_db

__all__ = ["MAX_TEXT", "Event", "apply_event", "bp"]  # these three live in postbode.feedback

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

POSTMARK_USER = "POSTBODE_WEBHOOK_USER"
POSTMARK_PASSWORD = "POSTBODE_WEBHOOK_PASSWORD"
MAILGUN_KEY = "POSTBODE_MAILGUN_WEBHOOK_KEY"

# A Mailgun signature older (or further in the future) than this is refused.
MAX_SIGNATURE_AGE = 15 * 60
# Bounce events may carry the bounced mail's headers; still far below this.
MAX_BODY = 1024 * 1024
MAX_DEPTH = 32

# Postmark bounce types that mean the address is gone, or that the person complained.
POSTMARK_HARD = frozenset({"HardBounce", "BadEmailAddress"})
POSTMARK_COMPLAINT = frozenset({"SpamComplaint", "SpamNotification"})

class Refused(Exception):
    """The request is answered with `status` and a short reason, and changes nothing."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


@bp.errorhandler(Refused)
def _refused(err: Refused) -> Response:
    current_app.logger.warning("webhook %s refused (%d): %s", request.path, err.status, err.reason)
    response = jsonify(status="refused", reason=err.reason)
    response.status_code = err.status
    response.headers.update(err.headers)
    return response


@bp.before_request
def _allow_bigger_bodies() -> None:
    request.max_content_length = MAX_BODY


# ---------------------------------------------------------------- Postmark


@bp.post("/postmark")
def postmark() -> Response:
    """Postmark's Bounce and SpamComplaint webhooks, behind HTTP basic auth."""
    _check_basic_auth(os.environ)
    payload = _json_object()
    event = parse_postmark(payload)
    if event is None:
        return _answer("ignored", record_type=str(payload.get("RecordType", ""))[:40])
    conn = get_db()
    with store.atomic(conn):
        outcome = apply_event(conn, event)
    return _answer(outcome)


def _check_basic_auth(env: Mapping[str, str]) -> None:
    user, password = env.get(POSTMARK_USER), env.get(POSTMARK_PASSWORD)
    if not user or not password:
        raise Refused(503, f"webhook credentials are not configured; set {POSTMARK_USER} and "
                           f"{POSTMARK_PASSWORD}")
    given_user, given_password = _basic_credentials(request.headers.get("Authorization", ""))
    # both compared, always, so the time taken says nothing about which part was wrong
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise Refused(401, "wrong or missing credentials",
                      {"WWW-Authenticate": 'Basic realm="postbode webhooks"'})


def _basic_credentials(header: str) -> tuple[str, str]:
    """(user, password) from a Basic Authorization header; empty strings when there is none."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password


def parse_postmark(payload: Mapping[str, Any]) -> Event | None:
    """The event a Postmark webhook reports, or None for one postbode does not act on."""
    record_type = payload.get("RecordType")
    if record_type not in ("Bounce", "SpamComplaint"):
        return None
    email = _required_text(payload, "Email")
    kind = str(payload.get("Type") or record_type)
    if record_type == "SpamComplaint" or kind in POSTMARK_COMPLAINT:
        action: Action = "complained"
    elif kind in POSTMARK_HARD or payload.get("Inactive") is True:
        # Inactive: Postmark itself will refuse this address from now on
        action = "bounced"
    else:
        action = "soft_bounce"
    bounce_id = payload.get("ID")
    event_id = f"{record_type}:{bounce_id}" if bounce_id not in (None, "") else _digest(payload)
    text = str(payload.get("Description") or payload.get("Details") or payload.get("Name") or "")
    return Event(
        provider="postmark", event_id=event_id, email=email, action=action, kind=kind,
        code=_int_or_none(payload.get("TypeCode")), text=f"{kind}: {text}".strip(": "),
        provider_id=_text_or_none(payload.get("MessageID")),
    )


# ---------------------------------------------------------------- Mailgun


@bp.post("/mailgun")
def mailgun() -> Response:
    """Mailgun's event webhooks (failed, complained), signed with the webhook signing key."""
    key = os.environ.get(MAILGUN_KEY)
    if not key:
        raise Refused(503, f"the Mailgun webhook signing key is not configured; set {MAILGUN_KEY}")
    payload = _json_object()  # bounded: depth, size and numbers checked before anything is read
    token = verify_mailgun_signature(payload.get("signature"), key, time.time())
    conn = get_db()
    # committed on its own, before the body is validated: a signature is used once, whatever follows
    with store.atomic(conn):
        _remember_token(conn, token)
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise Refused(400, "event-data missing or not an object")
    event = parse_mailgun(data)
    with store.atomic(conn):
        outcome = apply_event(conn, event) if event else "ignored"
    if event is None:
        return _answer(outcome, event=str(data.get("event", ""))[:40])
    return _answer(outcome)


def verify_mailgun_signature(signature: Any, key: str, now: float) -> str:
    """The token of a valid, fresh signature; `Refused` otherwise."""
    if not isinstance(signature, dict):
        raise Refused(400, "signature missing or not an object")
    parts = [signature.get(name) for name in ("timestamp", "token", "signature")]
    if not all(isinstance(p, (str, int)) and str(p) for p in parts):
        raise Refused(400, "signature needs timestamp, token and signature")
    timestamp, token, given = (str(p) for p in parts)
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise Refused(403, "signature does not match; check POSTBODE_MAILGUN_WEBHOOK_KEY")
    try:
        age = now - int(timestamp)
    except ValueError:
        raise Refused(400, "signature timestamp is not a number") from None
    if abs(age) > MAX_SIGNATURE_AGE:
        raise Refused(403, f"signature timestamp is {int(age)} s off; more than "
                           f"{MAX_SIGNATURE_AGE} s is refused (check this server's clock)")
    return token


def _remember_token(conn: store.Connection, token: str) -> None:
    """Record a signature token; one seen before is a replay (406: Mailgun does not retry it)."""
    if not remember_token(conn, token, time.time(), 2 * MAX_SIGNATURE_AGE):
        raise Refused(406, "this signature token was used before")


def parse_mailgun(data: Mapping[str, Any]) -> Event | None:
    """The event Mailgun's `event-data` reports, or None for one postbode does not act on."""
    name = data.get("event")
    if name == "complained":
        action: Action = "complained"
    elif name == "failed" and data.get("severity") == "permanent":
        action = "bounced"
    elif name == "failed" and data.get("severity") == "temporary":
        action = "soft_bounce"
    else:
        return None
    email = _required_text(data, "recipient")
    status = _object(data, "delivery-status")
    variables = _object(data, "user-variables")
    mailgun_id = _text_or_none(_object(_object(data, "message"), "headers").get("message-id"))
    text = str(status.get("description") or status.get("message") or data.get("reason") or "")
    kind = f"{name} ({data['severity']})" if name == "failed" else str(name)
    event_id = _text_or_none(data.get("id")) or _digest(data)
    return Event(
        provider="mailgun", event_id=event_id, email=email, action=action, kind=kind,
        code=_int_or_none(status.get("code")), text=f"{kind}: {text}".strip(": "),
        provider_id=f"<{mailgun_id.strip('<>')}>" if mailgun_id else None,
        message_id=_text_or_none(variables.get("postbode-message-id")),
    )


# ---------------------------------------------------------------- reading the request


def _json_object() -> dict[str, Any]:
    """The request body as a JSON object, or 400 with a short reason.

    Refused without a traceback: NaN/Infinity and numbers too big for a float,
    nesting deeper than MAX_DEPTH (providers send a handful of levels).
    """
    body = request.get_data(cache=True)
    try:
        payload = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise Refused(400, f"body is not valid JSON ({type(err).__name__})") from None
    if not isinstance(payload, dict):
        raise Refused(400, "body must be a JSON object")
    if _too_deep(payload):
        raise Refused(400, f"body is nested more than {MAX_DEPTH} levels deep")
    return payload


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is too big")
    return value


def _too_deep(payload: Any) -> bool:
    """Whether any value sits more than MAX_DEPTH objects or lists deep (walked without recursion)."""
    stack = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _required_text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Refused(400, f"field {name!r} missing or empty")
    return value.strip()


def _object(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A nested JSON object, or an empty one when it is missing or something else."""
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _text_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value) else None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _digest(payload: Mapping[str, Any]) -> str:
    """An id for an event that carries none: the hash of its content."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _answer(outcome: str, **extra: str) -> Response:
    return jsonify(status=outcome, **extra)
