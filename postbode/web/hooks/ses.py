"""Amazon SES events through SNS: Bounce and Complaint, with SNS's message signature checked.

SNS signs each message with a certificate it serves from
`https://sns.<region>.amazonaws.com/…pem`; postbode downloads it only from a
URL of exactly that form, checks the signature (version 1: SHA1withRSA,
version 2: SHA256withRSA) and that the topic is one of ours
(POSTBODE_SES_TOPIC_ARNS), confirms the subscription, and applies
bounces (Permanent → suppressed, Transient → counted) and complaints.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from typing import Any, Mapping
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Response, current_app, jsonify

from postbode.web.hooks.common import Event, Refused, apply, b64, json_body, optional, text

NAME = "ses"
TOPICS = "POSTBODE_SES_TOPIC_ARNS"
SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
MAX_AGE = dt.timedelta(hours=1)      # SNS retries for minutes; an older message is a replay
TIMEOUT = 10.0
SIGNED = {  # the fields SNS signs, in this order, per message type
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

SESSION = requests.Session()          # certificate downloads and subscription confirmations
_certificates: dict[str, x509.Certificate] = {}
_lock = threading.Lock()


def receive() -> Response:
    """POST /webhooks/ses (SNS sends its JSON as text/plain)."""
    topics = {t.strip() for t in os.environ.get(TOPICS, "").split(",") if t.strip()}
    if not topics:
        raise Refused(503, f"the SNS topics are not configured; set {TOPICS}")
    message = json_body()
    if not isinstance(message, dict) or message.get("Type") not in SIGNED:
        raise Refused(400, "not an SNS message (Type missing or unknown)")
    if message.get("TopicArn") not in topics:
        raise Refused(403, f"topic is not one of {TOPICS}")
    verify(message, dt.datetime.now(dt.timezone.utc))
    if message["Type"] == "SubscriptionConfirmation":
        return _confirm(message)
    if message["Type"] == "UnsubscribeConfirmation":
        return jsonify(status="ignored")
    return apply(parse(message))


# ---------------------------------------------------------------- the signature

def verify(message: Mapping[str, Any], now: dt.datetime) -> None:
    """`Refused` unless SNS signed this message, with a certificate from an SNS host."""
    version = str(message.get("SignatureVersion", ""))
    if version not in HASHES:
        raise Refused(403, f"SignatureVersion {version!r} is not 1 or 2")
    certificate = _certificate(sns_url(message.get("SigningCertURL"), "SigningCertURL"), now)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise Refused(403, "the signing certificate has no RSA key")
    signed = "".join(f"{name}\n{message[name]}\n" for name in SIGNED[message["Type"]]
                     if name in message)
    try:
        public_key.verify(b64(str(message.get("Signature", "")), "Signature"), signed.encode(),
                          padding.PKCS1v15(), HASHES[version]())
    except InvalidSignature:
        raise Refused(403, "the SNS signature does not match") from None
    try:
        sent = dt.datetime.fromisoformat(str(message.get("Timestamp")).replace("Z", "+00:00"))
    except ValueError:
        raise Refused(400, "Timestamp is not a date") from None
    if abs(now - sent) > MAX_AGE:
        raise Refused(403, "the message is more than an hour old (or ahead): a replay")


def sns_url(value: Any, what: str) -> str:
    """The URL, if it is https on an SNS host (sns.<region>.amazonaws.com) and nothing else."""
    parts = urlsplit(value if isinstance(value, str) else "")
    if (parts.scheme != "https" or not SNS_HOST.fullmatch(parts.hostname or "")
            or parts.port is not None or parts.username or parts.password):
        raise Refused(403, f"{what} is not on an SNS host (https://sns.<region>.amazonaws.com)")
    if what == "SigningCertURL" and not parts.path.endswith(".pem"):
        raise Refused(403, "SigningCertURL is not a .pem certificate")
    return str(value)


def _certificate(url: str, now: dt.datetime) -> x509.Certificate:
    with _lock:
        certificate = _certificates.get(url)
    if certificate is None:
        try:
            response = SESSION.get(url, timeout=TIMEOUT)
            response.raise_for_status()
            certificate = x509.load_pem_x509_certificate(response.content)
        except (requests.RequestException, ValueError) as err:
            raise Refused(503, f"cannot get the SNS signing certificate ({type(err).__name__})") from None
        with _lock:
            _certificates[url] = certificate
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise Refused(403, "the SNS signing certificate is not valid now")
    return certificate


def _confirm(message: Mapping[str, Any]) -> Response:
    """Visit the SubscribeURL (only on an SNS host), which confirms the subscription."""
    url = sns_url(message.get("SubscribeURL"), "SubscribeURL")
    try:
        response = SESSION.get(url, timeout=TIMEOUT)
    except requests.RequestException as err:
        raise Refused(503, f"cannot confirm the subscription ({type(err).__name__})") from None
    if not response.ok:
        raise Refused(503, f"SNS answered {response.status_code} to the confirmation")
    current_app.logger.info("SNS subscription to %s confirmed", message.get("TopicArn"))
    return jsonify(status="confirmed")


# ---------------------------------------------------------------- the SES event

def parse(message: Mapping[str, Any]) -> list[Event]:
    """The events of an SES notification (one per bounced or complaining recipient)."""
    try:
        body = json.loads(str(message.get("Message", "")))
    except ValueError:
        raise Refused(400, "the SNS Message is not SES's JSON") from None
    if not isinstance(body, dict):
        raise Refused(400, "the SNS Message is not a JSON object")
    kind = body.get("notificationType") or body.get("eventType")
    mail = body.get("mail") if isinstance(body.get("mail"), dict) else {}
    headers = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    common = {"provider_id": optional(mail.get("messageId")),
              "message_id": optional(headers.get("messageId"))}
    if kind == "Bounce":
        return _bounces(body.get("bounce"), common)
    if kind == "Complaint":
        return _complaints(body.get("complaint"), common)
    return []


def _recipients(part: Any, name: str) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
    if not isinstance(part, dict) or not isinstance(part.get(name), list):
        raise Refused(400, f"{name} missing")
    return part, [r for r in part[name] if isinstance(r, dict)]


def _bounces(bounce: Any, common: dict[str, str | None]) -> list[Event]:
    bounce, recipients = _recipients(bounce, "bouncedRecipients")
    permanent = bounce.get("bounceType") == "Permanent"
    kind = f"{bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
    return [Event(provider=NAME, event_id=f"{bounce.get('feedbackId')}:{r['emailAddress']}",
                  email=text(r, "emailAddress"), action="bounced" if permanent else "soft_bounce",
                  kind=kind, code=_code(r.get("diagnosticCode")),
                  text=f"{kind}: {r.get('diagnosticCode') or r.get('status') or ''}".strip(": "),
                  **common)
            for r in recipients if isinstance(r.get("emailAddress"), str)]


def _complaints(complaint: Any, common: dict[str, str | None]) -> list[Event]:
    complaint, recipients = _recipients(complaint, "complainedRecipients")
    kind = f"Complaint/{complaint.get('complaintFeedbackType') or 'unspecified'}"
    return [Event(provider=NAME, event_id=f"{complaint.get('feedbackId')}:{r['emailAddress']}",
                  email=text(r, "emailAddress"), action="complained", kind=kind, code=None,
                  text=kind, **common)
            for r in recipients if isinstance(r.get("emailAddress"), str)]


def _code(diagnostic: Any) -> int | None:
    """The SMTP code at the start of a diagnostic such as `smtp; 550 5.1.1 user unknown`."""
    found = re.search(r"\b([245]\d\d)\b", str(diagnostic or ""))
    return int(found.group(1)) if found else None
