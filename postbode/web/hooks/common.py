"""What the provider webhooks share: reading the request, checking a secret, applying events."""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from typing import Any, Iterable, Mapping

from flask import Response, current_app, jsonify, request

from postbode import store
from postbode.web.db import get_db
from postbode.web.webhooks import MAX_BODY, Event, Refused, apply_event

__all__ = ["Event", "Refused", "apply", "basic_auth", "json_body", "text", "int_or_none", "digest"]

MAX_SIGNATURE_AGE = 15 * 60     # a signed request older (or further ahead) than this is refused


def refused(err: Refused) -> Response:
    """The answer to a refused request: its status and a short reason, nothing changed."""
    current_app.logger.warning("webhook %s refused (%d): %s", request.path, err.status, err.reason)
    response = jsonify(status="refused", reason=err.reason)
    response.status_code = err.status
    response.headers.update(err.headers)
    return response


def limit_body() -> None:
    request.max_content_length = MAX_BODY


def secret(variable: str, what: str) -> str:
    """A webhook secret from the environment; until it is set the endpoint refuses everything."""
    value = os.environ.get(variable)
    if not value:
        raise Refused(503, f"the {what} is not configured; set {variable}")
    return value


def basic_auth(user_variable: str, password_variable: str) -> None:
    """HTTP basic auth against two environment variables; 401 when it does not match."""
    user = secret(user_variable, "webhook user")
    password = secret(password_variable, "webhook password")
    given = request.authorization
    given_user = (given.username or "") if given and given.type == "basic" else ""
    given_password = (given.password or "") if given and given.type == "basic" else ""
    # both compared, always, so the time taken says nothing about which part was wrong
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    if not (user_ok and password_ok):
        raise Refused(401, "wrong or missing credentials",
                      {"WWW-Authenticate": 'Basic realm="postbode webhooks"'})


def json_body(raw: bytes | None = None) -> Any:
    """The request body as JSON (object or list), or 400 with a short reason."""
    body = request.get_data(cache=True) if raw is None else raw
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise Refused(400, f"body is not valid JSON ({type(err).__name__})") from None


def objects(payload: Any) -> list[Mapping[str, Any]]:
    """One event object or a list of them (providers that group events send a list)."""
    items = payload if isinstance(payload, list) else [payload]
    if not items or not all(isinstance(item, dict) for item in items):
        raise Refused(400, "body must be a JSON object or a list of objects")
    return items


def apply(events: Iterable[Event], ignored: int = 0) -> Response:
    """Apply every event in one transaction; answer what became of them."""
    outcomes: list[str] = []
    conn = get_db()
    with store.atomic(conn):
        for event in events:
            outcomes.append(apply_event(conn, event))
    if not outcomes:
        return jsonify(status="ignored", ignored=ignored)
    status = outcomes[0] if len(set(outcomes)) == 1 else "applied"
    return jsonify(status=status, outcomes=outcomes, ignored=ignored)


def text(data: Mapping[str, Any], name: str) -> str:
    """A required text field; 400 naming it when it is missing or empty."""
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Refused(400, f"field {name!r} missing or empty")
    return value.strip()


def optional(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else None


def int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def digest(*parts: Any) -> str:
    """A stable event id from the parts that make an event unique."""
    canonical = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(400, f"{what} is not base64") from None
