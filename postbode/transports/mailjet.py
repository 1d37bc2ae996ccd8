"""Mailjet: Send API v3.1, up to 50 complete messages per call, one status per message.

Each message goes whole, with its own headers; postbode's Message-ID also goes
as the message's `CustomID`, which Mailjet's event webhook carries back.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import requests

from postbode.errors import TransportError
from postbode.transports import secret
from postbode.transports.base import SendResult, Status, results_for
from postbode.transports.http import ApiTransport, address, header, json_or_none, own_headers

if TYPE_CHECKING:
    from postbode.message import OutgoingMessage
    from postbode.transports import TransportUrl

API = "https://api.mailjet.com"
KEY_VARIABLE = "POSTBODE_MAILJET_API_KEY"
SECRET_VARIABLE = "POSTBODE_MAILJET_SECRET_KEY"
API_VARIABLE = "POSTBODE_MAILJET_API_URL"
MAX_MESSAGES = 50                # Send API v3.1: at most 50 messages in the Messages array
NOT_HEADERS = frozenset({"from", "to", "subject", "reply-to", "cc", "bcc", "date", "mime-version",
                         "content-type", "content-transfer-encoding"})

BATCH_LIMIT = MAX_MESSAGES
EVENTS = ("bounce", "spam", "blocked")
CREDENTIALS = (KEY_VARIABLE, SECRET_VARIABLE)


def from_url(url: "TransportUrl", settings, env: Mapping[str, str]) -> "MailjetTransport":
    """mailjet:// (POSTBODE_MAILJET_API_KEY and POSTBODE_MAILJET_SECRET_KEY)."""
    options = url.options({"api": None, "timeout": None})
    base = (options.get("api") or env.get(API_VARIABLE) or API).rstrip("/")
    key = env.get(KEY_VARIABLE) or url.user
    if not key:
        raise url.error(f"no Mailjet API key; set {KEY_VARIABLE} in the environment")
    secret_key = secret(url, env, SECRET_VARIABLE, "Mailjet secret key")
    return MailjetTransport(base, (key, secret_key), url.number("timeout", 60.0))


class MailjetTransport(ApiTransport):
    """Each message whole; Mailjet answers one entry per message, in order."""

    scheme = "mailjet"
    provider = "Mailjet"
    key_variable = f"{KEY_VARIABLE} and {SECRET_VARIABLE}"
    max_batch = MAX_MESSAGES

    def __init__(self, base: str, auth: tuple[str, str], timeout: float):
        super().__init__(f"{base}/v3.1/send", timeout)
        self.base = base
        self._auth = auth

    def check_key(self) -> None:
        """GET /v3/REST/user answers 401 for a wrong key pair."""
        self.get(f"{self.base}/v3/REST/user", auth=self._auth)

    def calls(self, messages: Sequence["OutgoingMessage"]) -> Iterator[Sequence["OutgoingMessage"]]:
        for start in range(0, len(messages), MAX_MESSAGES):
            yield messages[start:start + MAX_MESSAGES]

    def request(self, group: Sequence["OutgoingMessage"]) -> dict[str, Any]:
        return {"json": {"Messages": [_message(message) for message in group]}, "auth": self._auth}

    def parse(self, group: Sequence["OutgoingMessage"], response: requests.Response) -> list[SendResult]:
        entries = _entries(group, response)
        if entries is None:
            return results_for(group, Status.UNKNOWN, response.status_code,
                               "Mailjet's answer does not list one result per message; check "
                               "the message history in Mailjet before sending these again")
        return [_result(message, entry) for message, entry in zip(group, entries)]

    def refused(self, group: Sequence["OutgoingMessage"], response: requests.Response) -> list[SendResult]:
        """A 400 still lists each message: the good ones went out, the bad ones are rejected."""
        entries = _entries(group, response)
        if entries is None:
            return super().refused(group, response)
        return [_result(message, entry) for message, entry in zip(group, entries)]


def _message(message: "OutgoingMessage") -> dict[str, Any]:
    payload: dict[str, Any] = {
        "From": _mailjet(address(header(message, "From") or message.mail_from)),
        "To": [_mailjet(address(header(message, "To") or message.rcpt_to))],
        "Subject": message.subject,
        "TextPart": message.text,
        "HTMLPart": message.html,
        "Headers": own_headers(message, NOT_HEADERS),
        "CustomID": message.message_id,
    }
    reply_to = header(message, "Reply-To")
    if reply_to:
        payload["ReplyTo"] = _mailjet(address(reply_to))
    return payload


def _mailjet(addr: dict[str, str]) -> dict[str, str]:
    """Mailjet spells the address fields Email and Name."""
    return {"Email": addr["email"], **({"Name": addr["name"]} if "name" in addr else {})}


def _entries(group: Sequence["OutgoingMessage"], response: requests.Response) -> list | None:
    body = json_or_none(response)
    entries = body.get("Messages") if isinstance(body, dict) else None
    if not isinstance(entries, list) or len(entries) != len(group):
        return None
    if not all(isinstance(entry, dict) for entry in entries):
        return None
    return entries


def _result(message: "OutgoingMessage", entry: Mapping[str, Any]) -> SendResult:
    """One message's outcome from its entry: Status success (with the MessageID) or error."""
    if entry.get("Status") == "success":
        to = entry.get("To")
        sent = to[0] if isinstance(to, list) and to and isinstance(to[0], dict) else {}
        provider_id = sent.get("MessageID")
        if provider_id is None:
            return SendResult(message.message_id, Status.UNKNOWN, None,
                              "Mailjet said success without a MessageID")
        return SendResult(message.message_id, Status.SENT, 200, "success", str(provider_id))
    errors = [e for e in entry.get("Errors", []) if isinstance(e, dict)] or [{}]
    first = errors[0]
    code = first.get("StatusCode")
    text = f"{first.get('ErrorCode', 'error')}: {first.get('ErrorMessage', '')}".strip(": ")
    if code in (401, 403):
        raise TransportError(f"Mailjet refused the key ({text}); check {KEY_VARIABLE} "
                             f"and {SECRET_VARIABLE}")
    if isinstance(code, int) and (code == 429 or code >= 500):
        return SendResult(message.message_id, Status.RETRY, code, text)
    return SendResult(message.message_id, Status.REJECTED, code if isinstance(code, int) else None,
                      text)
