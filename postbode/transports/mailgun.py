"""Mailgun: the messages API in batch mode, up to 1,000 recipients of one variant per call.

Personal parts travel as recipient-variables: each marker of the variant's split
templates (`PreparedVariant.html` / `.text`) becomes %recipient.<name>_html%
or %recipient.<name>_text%, and each header whose value differs between recipients
(Message-ID, To, List-Unsubscribe) becomes h:<Header>: %recipient.h_<n>%.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import requests

from postbode.errors import TransportError
from postbode.transports import secret
from postbode.transports.base import SendResult, Status, results_for
from postbode.transports.http import ApiTransport, values_by_part

if TYPE_CHECKING:
    from postbode.message import OutgoingMessage
    from postbode.transports import TransportUrl

REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
KEY_VARIABLE = "POSTBODE_MAILGUN_API_KEY"
API_VARIABLE = "POSTBODE_MAILGUN_API_URL"
MAX_RECIPIENTS = 1000
# Set by the API's own fields or by Mailgun itself, never as h: headers.
NOT_HEADERS = {"from", "to", "subject", "date", "mime-version", "content-type",
               "content-transfer-encoding"}

# what ADDING_A_PROVIDER.md asks every provider module to declare (tests/transports/test_checklist.py)
BATCH_LIMIT = MAX_RECIPIENTS
EVENTS = ("failed", "complained")
CREDENTIALS = (KEY_VARIABLE,)


def from_url(url: "TransportUrl", settings, env: Mapping[str, str]) -> "MailgunTransport":
    """mailgun://DOMAIN?region=eu|us (key: POSTBODE_MAILGUN_API_KEY)."""
    options = url.options({"region": tuple(REGIONS), "api": None, "timeout": None})
    if not url.host:
        raise url.error("name the Mailgun sending domain, e.g. mailgun://mg.example.org?region=eu")
    base = options.get("api") or env.get(API_VARIABLE) or REGIONS[options.get("region", "us")]
    key = secret(url, env, KEY_VARIABLE, "Mailgun API key")
    base = base.rstrip("/")
    return MailgunTransport(f"{base}/v3/{url.host}/messages", key, url.number("timeout", 60.0),
                            domain_url=f"{base}/v3/domains/{url.host}")


class MailgunTransport(ApiTransport):
    """One call per variant and ≤1,000 recipients; Mailgun queues one message per recipient."""

    scheme = "mailgun"
    provider = "Mailgun"
    key_variable = KEY_VARIABLE
    max_batch = MAX_RECIPIENTS

    def __init__(self, endpoint: str, key: str, timeout: float, *, domain_url: str):
        super().__init__(endpoint, timeout)
        self._key = key
        self.domain_url = domain_url

    def check_key(self) -> None:
        """GET /v3/domains/DOMAIN: 401 for a wrong key, 404 for a domain not on the account."""
        response = self.get(self.domain_url, auth=("api", self._key))
        if response.status_code == 404:
            domain = self.domain_url.rsplit("/", 1)[1]
            raise TransportError(
                f"Mailgun knows no sending domain {domain} for this key in this region; check the "
                "domain in mailgun://DOMAIN and ?region=eu or ?region=us (where the domain was added)")

    def calls(self, messages: Sequence["OutgoingMessage"]) -> Iterator[list["OutgoingMessage"]]:
        """Messages of one variant, subject and sender together, each address once per call."""
        groups: dict[tuple[int, str, str], list[dict[str, "OutgoingMessage"]]] = {}
        for message in messages:
            if message.variant is None:
                raise self.unsupported(
                    "a message without its prepared variant: batch sending needs the variant's template"
                )
            chunks = groups.setdefault((id(message.variant), message.subject, message.mail_from), [{}])
            if len(chunks[-1]) >= MAX_RECIPIENTS or message.rcpt_to in chunks[-1]:
                chunks.append({})
            chunks[-1][message.rcpt_to] = message
        for chunks in groups.values():
            for chunk in chunks:
                yield list(chunk.values())

    def request(self, group: Sequence["OutgoingMessage"]) -> dict[str, Any]:
        first = group[0]
        html_body, text_body = _template(first.variant)
        fields: list[tuple[str, str]] = [("from", _header(first, "From") or first.mail_from),
                                         ("subject", first.subject),
                                         ("html", html_body), ("text", text_body)]
        # the To header (with the name); Mailgun matches recipient-variables on the address in it
        fields += [("to", _header(message, "To") or message.rcpt_to) for message in group]
        variables = {message.rcpt_to: _marker_values(message) for message in group}
        for index, (name, values) in enumerate(_headers_by_name(group).items()):
            if len(set(values)) == 1:
                fields.append((f"h:{name}", values[0]))
                continue
            key = f"h_{index}"
            fields.append((f"h:{name}", f"%recipient.{key}%"))
            for message, value in zip(group, values):
                variables[message.rcpt_to][key] = value
        for message in group:
            variables[message.rcpt_to]["message_id"] = message.message_id
        fields.append(("v:postbode-message-id", "%recipient.message_id%"))
        fields.append(("recipient-variables", json.dumps(variables, ensure_ascii=False)))
        return {"data": fields, "auth": ("api", self._key)}

    def parse(self, group: Sequence["OutgoingMessage"], response: requests.Response) -> list[SendResult]:
        """Mailgun answers one id for the whole call: every message of it is queued."""
        try:
            body = response.json()
        except ValueError:
            body = {}
        return results_for(group, Status.SENT, response.status_code,
                           str(body.get("message", "queued")), provider_id=body.get("id"))


def _template(variant) -> tuple[str, str]:
    """The variant's HTML and text with each marker turned into a recipient variable."""
    return tuple(  # type: ignore[return-value]
        template.fill({marker: f"%recipient.{_variable(marker, context)}%" for marker in template.markers})
        for template, context in ((variant.html, "html"), (variant.text, "text"))
    )


def _variable(marker: str, context: str) -> str:
    return f"{marker.strip('_').lower()}_{context}"


def _marker_values(message: "OutgoingMessage") -> dict[str, str]:
    return values_by_part(message, _variable)


def _headers_by_name(group: Sequence["OutgoingMessage"]) -> dict[str, list[str]]:
    """Each header to pass as h:, with every message's value (in group order)."""
    names = [name for name, _ in group[0].headers if name.lower() not in NOT_HEADERS]
    return {name: [_header(message, name) or "" for message in group] for name in dict.fromkeys(names)}


def _header(message: "OutgoingMessage", name: str) -> str | None:
    lowered = name.lower()
    return next((value for key, value in message.headers if key.lower() == lowered), None)
