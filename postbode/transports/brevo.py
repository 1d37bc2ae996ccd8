"""Brevo: the transactional email API (`POST /v3/smtp/email`), one message per call.

Brevo's batch form (`messageVersions`, up to 1,000 per call) lets each version
change only its recipients, reply-to, subject, HTML and params, not its headers.
postbode's mails need their own Message-ID and List-Unsubscribe per recipient,
so each message goes in a call of its own, with its headers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import requests

from postbode.transports import secret
from postbode.transports.base import SendResult, Status, results_for
from postbode.transports.http import (
    ApiTransport, address, header, json_or_none, own_headers, seconds,
)

if TYPE_CHECKING:
    from postbode.message import OutgoingMessage
    from postbode.transports import TransportUrl

API = "https://api.brevo.com"
KEY_VARIABLE = "POSTBODE_BREVO_API_KEY"
API_VARIABLE = "POSTBODE_BREVO_API_URL"
MAX_VERSIONS = 1000              # messageVersions per call, documented; not usable (see above)
MESSAGES_PER_CALL = 1
NOT_HEADERS = frozenset({"from", "to", "subject", "reply-to", "cc", "bcc", "date", "mime-version",
                         "content-type", "content-transfer-encoding"})

BATCH_LIMIT = MESSAGES_PER_CALL
EVENTS = ("hard_bounce", "soft_bounce", "spam", "unsubscribed")
CREDENTIALS = (KEY_VARIABLE,)


def from_url(url: "TransportUrl", settings, env: Mapping[str, str]) -> "BrevoTransport":
    """brevo:// (key: POSTBODE_BREVO_API_KEY)."""
    options = url.options({"api": None, "timeout": None})
    base = (options.get("api") or env.get(API_VARIABLE) or API).rstrip("/")
    key = secret(url, env, KEY_VARIABLE, "Brevo API key")
    return BrevoTransport(base, key, url.number("timeout", 60.0))


class BrevoTransport(ApiTransport):
    """One message per call, whole; Brevo answers its messageId."""

    scheme = "brevo"
    provider = "Brevo"
    key_variable = KEY_VARIABLE
    max_batch = 50               # claimed together; still one call each

    def __init__(self, base: str, key: str, timeout: float):
        super().__init__(f"{base}/v3/smtp/email", timeout)
        self.base = base
        self._key = key

    def _headers(self) -> dict[str, str]:
        return {"api-key": self._key, "Accept": "application/json"}

    def check_key(self) -> None:
        """GET /v3/account answers 401 for a wrong key."""
        self.get(f"{self.base}/v3/account", headers=self._headers())

    def calls(self, messages: Sequence["OutgoingMessage"]) -> Iterator[Sequence["OutgoingMessage"]]:
        for message in messages:
            yield [message]

    def request(self, group: Sequence["OutgoingMessage"]) -> dict[str, Any]:
        (message,) = group
        payload: dict[str, Any] = {
            "sender": address(header(message, "From") or message.mail_from),
            "to": [address(header(message, "To") or message.rcpt_to)],
            "subject": message.subject,
            "htmlContent": message.html,
            "textContent": message.text,
            "headers": own_headers(message, NOT_HEADERS),
        }
        reply_to = header(message, "Reply-To")
        if reply_to:
            payload["replyTo"] = address(reply_to)
        return {"json": payload, "headers": self._headers()}

    def parse(self, group: Sequence["OutgoingMessage"], response: requests.Response) -> list[SendResult]:
        body = json_or_none(response)
        provider_id = body.get("messageId") if isinstance(body, dict) else None
        if not isinstance(provider_id, str) or not provider_id:
            return results_for(group, Status.UNKNOWN, response.status_code,
                               "Brevo's answer has no messageId; check the transactional logs "
                               "in Brevo before sending this again")
        return results_for(group, Status.SENT, response.status_code, "queued",
                           provider_id=provider_id)

    def wait(self, response: requests.Response) -> float | None:
        """Brevo sends no Retry-After; x-sib-ratelimit-reset is the seconds until the limit frees."""
        reset = seconds(response.headers.get("x-sib-ratelimit-reset"))
        return reset if reset is not None else super().wait(response)
