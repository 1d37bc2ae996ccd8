"""Mailjet's event webhooks: bounce, spam, blocked, behind HTTP basic auth.

Mailjet calls `https://USER:PASSWORD@…/webhooks/mailjet`; a 200 answer stops it
from retrying. With grouping on, one request carries a list of events.
"""
from __future__ import annotations

from typing import Any, Mapping

from flask import Response

from postbode.web.hooks.common import (
    Event, apply, basic_auth, json_body, objects, optional, text,
)

NAME = "mailjet"
USER = "POSTBODE_MAILJET_WEBHOOK_USER"
PASSWORD = "POSTBODE_MAILJET_WEBHOOK_PASSWORD"


def receive() -> Response:
    """POST /webhooks/mailjet."""
    basic_auth(USER, PASSWORD)
    items = objects(json_body())
    events = [event for event in map(parse, items) if event is not None]
    return apply(events, ignored=len(items) - len(events))


def _action(data: Mapping[str, Any]) -> str | None:
    name = data.get("event")
    if name == "spam":
        return "complained"
    if name == "bounce":
        return "bounced" if data.get("hard_bounce") is True else "soft_bounce"
    if name == "blocked":
        # blocked because of the address (an earlier hard bounce, a known spam trap) is for
        # good; blocked because of the content is not the address's fault
        return "bounced" if data.get("error_related_to") == "recipient" else "soft_bounce"
    return None


def parse(data: Mapping[str, Any]) -> Event | None:
    """The event of one Mailjet webhook object, or None for one postbode does not act on."""
    action = _action(data)
    if action is None:
        return None
    name = str(data["event"])
    email = text(data, "email")
    mailjet_id = optional(data.get("MessageID")) or optional(data.get("mj_message_id"))
    reason = " ".join(str(data.get(k) or "") for k in ("error_related_to", "error", "source"))
    kind = f"{name} (hard)" if data.get("hard_bounce") is True else name
    return Event(provider=NAME, event_id=f"{mailjet_id or data.get('time')}:{name}:{email.lower()}",
                 email=email, action=action, kind=kind, code=None,
                 text=f"{kind}: {reason.strip()}".strip(": "), provider_id=mailjet_id,
                 message_id=optional(data.get("CustomID")))
