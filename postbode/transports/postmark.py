"""Postmark: /email/batch, up to 500 complete messages per call, one ErrorCode per message."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

import requests

from postbode.errors import TransportError
from postbode.transports import secret
from postbode.transports.base import SendResult, Status, results_for
from postbode.transports.http import ApiTransport

if TYPE_CHECKING:
    from postbode.message import OutgoingMessage
    from postbode.transports import TransportUrl

API = "https://api.postmarkapp.com"
KEY_VARIABLE = "POSTBODE_POSTMARK_TOKEN"
API_VARIABLE = "POSTBODE_POSTMARK_API_URL"
MAX_MESSAGES = 500
INACTIVE_RECIPIENT = 406     # hard bounced, complained or unsubscribed at Postmark
# Given as the JSON fields From, To, Subject, ReplyTo; the rest Postmark sets itself.
NOT_HEADERS = {"from", "to", "subject", "reply-to", "date", "mime-version", "content-type",
               "content-transfer-encoding"}

# what ADDING_A_PROVIDER.md asks every provider module to declare (tests/transports/test_checklist.py)
BATCH_LIMIT = MAX_MESSAGES
EVENTS = ("Bounce", "SpamComplaint")
CREDENTIALS = (KEY_VARIABLE,)


def from_url(url: "TransportUrl", settings, env: Mapping[str, str]) -> "PostmarkTransport":
    """postmark:// (token: POSTBODE_POSTMARK_TOKEN); ?stream= picks the message stream."""
    options = url.options({"api": None, "stream": None, "timeout": None})
    base = options.get("api") or env.get(API_VARIABLE) or API
    token = secret(url, env, KEY_VARIABLE, "Postmark server token")
    base = base.rstrip("/")
    return PostmarkTransport(f"{base}/email/batch", token, options.get("stream", "broadcast"),
                             url.number("timeout", 60.0), server_url=f"{base}/server")


class PostmarkTransport(ApiTransport):
    """Each message goes whole (its own headers and bodies); results come back in order."""

    scheme = "postmark"
    provider = "Postmark"
    key_variable = KEY_VARIABLE
    max_batch = MAX_MESSAGES

    def __init__(self, endpoint: str, token: str, stream: str, timeout: float, *, server_url: str):
        super().__init__(endpoint, timeout)
        self._token = token
        self.stream = stream
        self.server_url = server_url

    def check_key(self) -> None:
        """GET /server with the token: 401 (ErrorCode 10) for a wrong one."""
        self.get(self.server_url, headers={"X-Postmark-Server-Token": self._token,
                                           "Accept": "application/json"})

    def calls(self, messages: Sequence["OutgoingMessage"]) -> Iterator[Sequence["OutgoingMessage"]]:
        for start in range(0, len(messages), MAX_MESSAGES):
            yield messages[start:start + MAX_MESSAGES]

    def request(self, group: Sequence["OutgoingMessage"]) -> dict[str, Any]:
        headers = {"X-Postmark-Server-Token": self._token,
                   "Accept": "application/json", "Content-Type": "application/json"}
        return {"json": [self._payload(message) for message in group], "headers": headers}

    def _payload(self, message: "OutgoingMessage") -> dict[str, Any]:
        fields = {name.lower(): value for name, value in message.headers}
        payload: dict[str, Any] = {
            "From": fields.get("from", message.mail_from),
            "To": fields.get("to", message.rcpt_to),
            "Subject": message.subject,
            "HtmlBody": message.html,
            "TextBody": message.text,
            "Headers": [{"Name": name, "Value": value} for name, value in message.headers
                        if name.lower() not in NOT_HEADERS],
            "MessageStream": self.stream,
        }
        if "reply-to" in fields:
            payload["ReplyTo"] = fields["reply-to"]
        return payload

    def parse(self, group: Sequence["OutgoingMessage"], response: requests.Response) -> list[SendResult]:
        try:
            answers = response.json()
        except ValueError:
            answers = None
        if not isinstance(answers, list) or len(answers) != len(group):
            return results_for(group, Status.UNKNOWN, response.status_code,
                               "Postmark's answer does not list one result per message; "
                               "check the activity log in Postmark before sending these again")
        return [_result(message, answer) for message, answer in zip(group, answers)]

    def refused(self, group: Sequence["OutgoingMessage"], response: requests.Response) -> list[SendResult]:
        """A refused batch: bad messages are final; an account problem stops the campaign."""
        try:
            code = int(response.json().get("ErrorCode", 0))
            text = str(response.json().get("Message", ""))
        except (ValueError, AttributeError, TypeError):
            return super().refused(group, response)
        if code and not 300 <= code < 400:
            raise TransportError(
                f"Postmark refused the batch (ErrorCode {code}: {text}); fix this in your Postmark "
                f"account or sender signature, then send again (nothing of this batch was sent)"
            )
        return results_for(group, Status.REJECTED, response.status_code, f"ErrorCode {code}: {text}")


def _result(message: "OutgoingMessage", answer: Mapping[str, Any]) -> SendResult:
    """One message's outcome from its entry in Postmark's answer."""
    code = int(answer.get("ErrorCode", -1))
    text = f"ErrorCode {code}: {answer.get('Message', '')}"
    if code == 0:
        return SendResult(message.message_id, Status.SENT, code, text, answer.get("MessageID"))
    if code == INACTIVE_RECIPIENT:
        return SendResult(message.message_id, Status.REJECTED, code, text, hard_bounce=True)
    if 300 <= code < 400:
        return SendResult(message.message_id, Status.REJECTED, code, text)
    # account or sender problems (e.g. 400, 401, 405, 412): nothing sent, fixable
    return SendResult(message.message_id, Status.RETRY, code, text)
