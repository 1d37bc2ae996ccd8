"""Brevo's transactional webhooks: hard_bounce, soft_bounce, spam, unsubscribed.

Brevo calls the URL with the user and password it was given (basic auth,
`https://USER:PASSWORD@…/webhooks/brevo`), or with a bearer token; either must
match the environment.
"""
from __future__ import annotations

import hmac
import os
from typing import Any, Mapping

from flask import Response, request

from postbode.web.hooks.common import (
    Event, Refused, apply, basic_auth, int_or_none, json_body, objects, optional, text,
)

NAME = "brevo"
USER = "POSTBODE_BREVO_WEBHOOK_USER"
PASSWORD = "POSTBODE_BREVO_WEBHOOK_PASSWORD"
TOKEN = "POSTBODE_BREVO_WEBHOOK_TOKEN"
ACTIONS = {"hard_bounce": "bounced", "invalid_email": "bounced", "spam": "complained",
           "unsubscribed": "unsubscribed", "soft_bounce": "soft_bounce"}


def receive() -> Response:
    """POST /webhooks/brevo."""
    _authenticate()
    items = objects(json_body())
    events = [event for event in map(parse, items) if event is not None]
    return apply(events, ignored=len(items) - len(events))


def _authenticate() -> None:
    token = os.environ.get(TOKEN)
    given = request.headers.get("Authorization", "")
    if token and given.lower().startswith("bearer "):
        if not hmac.compare_digest(given[7:].strip().encode(), token.encode()):
            raise Refused(401, "wrong token")
        return
    if token and not os.environ.get(USER):
        raise Refused(401, "missing token", {"WWW-Authenticate": 'Bearer realm="postbode webhooks"'})
    basic_auth(USER, PASSWORD)


def parse(data: Mapping[str, Any]) -> Event | None:
    """The event of one Brevo webhook object, or None for one postbode does not act on."""
    name = data.get("event")
    action = ACTIONS.get(name) if isinstance(name, str) else None
    if action is None:
        return None
    email = text(data, "email")
    message = optional(data.get("message-id"))
    reason = str(data.get("reason") or "")
    # Brevo's `id` names the webhook, not the event: one event per mail, kind and address
    event_id = f"{message or data.get('ts_event') or data.get('date')}:{name}:{email.lower()}"
    return Event(provider=NAME, event_id=event_id, email=email, action=action, kind=name,
                 code=int_or_none(data.get("code")), text=f"{name}: {reason}".strip(": "),
                 provider_id=message)
