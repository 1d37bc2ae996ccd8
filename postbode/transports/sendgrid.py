"""SendGrid: v3 `mail/send`, one variant per call, up to 1,000 personalizations.

The variant's HTML and text go once; each marker becomes a substitution tag
(`-pb-<marker>-html-` / `-pb-<marker>-text-`) that SendGrid fills per
personalization, and every header that differs between recipients
(Message-ID, To, List-Unsubscribe) rides in that personalization's `headers`.
postbode's Message-ID also goes as the custom argument `postbode_message_id`,
which SendGrid's event webhook carries back.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import requests

from postbode.transports import secret
from postbode.transports.base import SendResult, Status, results_for
from postbode.transports.http import (
    ApiTransport, address, header, json_or_none, own_headers, seconds, values_by_part,
)

if TYPE_CHECKING:
    from postbode.message import OutgoingMessage
    from postbode.transports import TransportUrl

REGIONS = {"global": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
KEY_VARIABLE = "POSTBODE_SENDGRID_API_KEY"
API_VARIABLE = "POSTBODE_SENDGRID_API_URL"
MAX_PERSONALIZATIONS = 1000      # and at most 1,000 recipients (to + cc + bcc) per request
ACCEPTED = 202                   # the documented answer: queued, empty body, X-Message-Id header
# SendGrid's own fields, or headers it does not let a personalization set.
NOT_HEADERS = frozenset({"from", "to", "subject", "reply-to", "cc", "bcc", "date", "mime-version",
                         "content-type", "content-transfer-encoding"})

BATCH_LIMIT = MAX_PERSONALIZATIONS
EVENTS = ("bounce", "dropped", "spamreport")
CREDENTIALS = (KEY_VARIABLE,)


def from_url(url: "TransportUrl", settings, env: Mapping[str, str]) -> "SendGridTransport":
    """sendgrid://?region=global|eu (key: POSTBODE_SENDGRID_API_KEY)."""
    options = url.options({"region": tuple(REGIONS), "api": None, "timeout": None})
    base = options.get("api") or env.get(API_VARIABLE) or REGIONS[options.get("region", "global")]
    key = secret(url, env, KEY_VARIABLE, "SendGrid API key")
    return SendGridTransport(base.rstrip("/"), key, url.number("timeout", 60.0))


class SendGridTransport(ApiTransport):
    """One call per variant and ≤1,000 recipients; one personalization per recipient."""

    scheme = "sendgrid"
    provider = "SendGrid"
    key_variable = KEY_VARIABLE
    max_batch = MAX_PERSONALIZATIONS

    def __init__(self, base: str, key: str, timeout: float):
        super().__init__(f"{base}/v3/mail/send", timeout)
        self.base = base
        self._key = key

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key}"}

    def check_key(self) -> None:
        """GET /v3/scopes: the key must exist and be allowed to send mail."""
        response = self.get(f"{self.base}/v3/scopes", headers=self._auth())
        body = json_or_none(response) if response.ok else None
        if isinstance(body, dict) and "mail.send" not in body.get("scopes", []):
            raise self.unsupported("sending with this API key: it lacks the mail.send permission; "
                                   f"give {KEY_VARIABLE} a key with Mail Send access")

    def calls(self, messages: Sequence["OutgoingMessage"]) -> Iterator[list["OutgoingMessage"]]:
        """Messages of one variant, subject and sender together, each address once per call."""
        groups: dict[tuple[int, str, str], list[dict[str, "OutgoingMessage"]]] = {}
        for message in messages:
            if message.variant is None:
                raise self.unsupported("a message without its prepared variant (batching needs it)")
            chunks = groups.setdefault((id(message.variant), message.subject, message.mail_from), [{}])
            key = message.rcpt_to.lower()
            if len(chunks[-1]) >= MAX_PERSONALIZATIONS or key in chunks[-1]:
                chunks.append({})
            chunks[-1][key] = message
        for chunks in groups.values():
            for chunk in chunks:
                yield list(chunk.values())

    def request(self, group: Sequence["OutgoingMessage"]) -> dict[str, Any]:
        first = group[0]
        html_body, text_body = _template(first.variant)
        body: dict[str, Any] = {
            "personalizations": [_personalization(message) for message in group],
            "from": address(header(first, "From") or first.mail_from),
            "subject": first.subject,
            "content": [{"type": "text/plain", "value": text_body},
                        {"type": "text/html", "value": html_body}],
            # click tracking would rewrite the unsubscribe link in the body
            "tracking_settings": {"click_tracking": {"enable": False, "enable_text": False}},
        }
        reply_to = header(first, "Reply-To")
        if reply_to:
            body["reply_to"] = address(reply_to)
        return {"json": body, "headers": {**self._auth(), "Content-Type": "application/json"}}

    def parse(self, group: Sequence["OutgoingMessage"], response: requests.Response) -> list[SendResult]:
        """202 with an X-Message-Id: every personalization is queued; anything else is unclear."""
        provider_id = response.headers.get("X-Message-Id")
        if response.status_code != ACCEPTED or not provider_id:
            return results_for(group, Status.UNKNOWN, response.status_code,
                               "SendGrid's answer is not the documented 202 with an X-Message-Id; "
                               "check the Activity feed in SendGrid before sending these again")
        return results_for(group, Status.SENT, ACCEPTED, "queued", provider_id=provider_id)

    def wait(self, response: requests.Response) -> float | None:
        """X-RateLimit-Reset is the Unix time at which the limit frees up."""
        reset = seconds(response.headers.get("X-RateLimit-Reset"))
        if reset is not None:
            return max(0.0, reset - time.time())
        return super().wait(response)


def _personalization(message: "OutgoingMessage") -> dict[str, Any]:
    headers = own_headers(message, NOT_HEADERS)
    return {
        "to": [address(header(message, "To") or message.rcpt_to)],
        "headers": headers,
        "substitutions": _substitutions(message),
        "custom_args": {"postbode_message_id": message.message_id},
    }


def _template(variant) -> tuple[str, str]:
    """The variant's HTML and text with each marker turned into a substitution tag."""
    return tuple(  # type: ignore[return-value]
        template.fill({marker: _tag(marker, context) for marker in template.markers})
        for template, context in ((variant.html, "html"), (variant.text, "text"))
    )


def _tag(marker: str, context: str) -> str:
    return f"-pb-{marker.strip('_').lower()}-{context}-"


def _substitutions(message: "OutgoingMessage") -> dict[str, str]:
    return values_by_part(message, _tag)
