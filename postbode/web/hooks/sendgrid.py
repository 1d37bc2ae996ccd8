"""SendGrid's signed event webhook: bounce, dropped, spamreport.

SendGrid signs the timestamp followed by the raw body with ECDSA (P-256,
SHA-256); the signature and the timestamp come in the
`X-Twilio-Email-Event-Webhook-Signature` / `-Timestamp` headers, and the
public verification key is shown on the webhook's settings page.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Response, request

from postbode.web.hooks.common import (
    MAX_SIGNATURE_AGE, Event, Refused, apply, b64, int_or_none, json_body, objects, optional,
    secret, text,
)

NAME = "sendgrid"
KEY = "POSTBODE_SENDGRID_WEBHOOK_KEY"
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
# why SendGrid dropped a mail → what it means for the address
DROPPED = {"Bounced Address": "bounced", "Invalid": "bounced", "Invalid SMTPAPI header": None,
           "Spam Reporting Address": "complained", "Unsubscribed Address": "unsubscribed"}


def receive() -> Response:
    """POST /webhooks/sendgrid."""
    raw = request.get_data(cache=True)
    verify(raw, request.headers.get(SIGNATURE, ""), request.headers.get(TIMESTAMP, ""),
           secret(KEY, "SendGrid webhook verification key"), time.time())
    items = objects(json_body(raw))
    events = [event for event in map(parse, items) if event is not None]
    return apply(events, ignored=len(items) - len(events))


def verify(raw: bytes, signature: str, timestamp: str, key: str, now: float) -> None:
    """`Refused` unless the signature is SendGrid's over timestamp + body, and fresh."""
    if not signature or not timestamp:
        raise Refused(403, f"no {SIGNATURE} / {TIMESTAMP} headers: not a signed SendGrid event")
    try:
        public_key = serialization.load_der_public_key(b64(key, KEY))
    except ValueError:
        raise Refused(503, f"{KEY} is not a SendGrid verification key (base64 DER)") from None
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise Refused(503, f"{KEY} is not an ECDSA public key")
    try:
        public_key.verify(b64(signature, SIGNATURE), timestamp.encode() + raw,
                          ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Refused(403, f"signature does not match; check {KEY}") from None
    age = now - (int_or_none(timestamp) or 0)
    if abs(age) > MAX_SIGNATURE_AGE:
        raise Refused(403, f"signature timestamp is {int(age)} s off; more than "
                           f"{MAX_SIGNATURE_AGE} s is refused (check this server's clock)")


def _action(data: Mapping[str, Any]) -> str | None:
    name = data.get("event")
    if name == "spamreport":
        return "complained"
    if name == "bounce":
        # type "blocked": the receiving server refused it for now (policy, reputation)
        return "soft_bounce" if data.get("type") == "blocked" else "bounced"
    if name == "dropped":
        return DROPPED.get(str(data.get("reason", "")))
    return None


def parse(data: Mapping[str, Any]) -> Event | None:
    """The event of one SendGrid event object, or None for one postbode does not act on."""
    action = _action(data)
    if action is None:
        return None
    name = str(data["event"])
    email = text(data, "email")
    sg_id = optional(data.get("sg_message_id"))
    reason = str(data.get("reason") or data.get("status") or "")
    kind = f"{name} ({data['type']})" if data.get("type") else name
    return Event(provider=NAME, event_id=optional(data.get("sg_event_id")) or f"{sg_id}:{name}:{email}",
                 email=email, action=action, kind=kind, code=int_or_none(reason[:3]),
                 text=f"{kind}: {reason}".strip(": "),
                 # sg_message_id is the X-Message-Id of the call, then ".filter…"
                 provider_id=sg_id.split(".", 1)[0] if sg_id else None,
                 message_id=optional(data.get("postbode_message_id")))
