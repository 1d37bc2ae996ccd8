"""What the provider transports share: one POST per batch, and the reading of its outcome.

A provider module fills in only its own hooks (`calls`, `request`, `parse`, and where
it needs them `refused`, `check_key`, `wait`); the hooks it overrides are its feature list.
"""
from __future__ import annotations

import email.utils
import time
import html
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from postbode.errors import TransportError
from postbode.transports.base import SendResult, Status, Transport, results_for

if TYPE_CHECKING:
    from postbode.message import OutgoingMessage

CONNECT_TIMEOUT = 10.0


class ApiTransport(Transport):
    """An HTTP API that takes many messages per request."""

    provider = ""            # "Mailgun", "Postmark": used in messages
    key_variable = ""        # the environment variable holding the key, named in errors

    def __init__(self, endpoint: str, timeout: float):
        self.endpoint = endpoint
        self.timeout = timeout
        self._session: requests.Session | None = None

    # -- provider hooks --------------------------------------------------------------

    @abstractmethod
    def calls(self, messages: Sequence["OutgoingMessage"]) -> Iterator[Sequence["OutgoingMessage"]]:
        """Split the messages into the groups that go in one request each."""

    @abstractmethod
    def request(self, group: Sequence["OutgoingMessage"]) -> dict[str, Any]:
        """The keyword arguments for `Session.post` (data/json, headers, auth)."""

    @abstractmethod
    def parse(self, group: Sequence["OutgoingMessage"], response: requests.Response) -> list[SendResult]:
        """The results of a request the provider accepted (2xx)."""

    def check_key(self) -> None:
        """Prove the key works before anything is claimed (a cheap authenticated `self.get`)."""

    def wait(self, response: requests.Response) -> float | None:
        """Seconds a 429/5xx answer asks us to wait: `Retry-After`, or the provider's own header."""
        return retry_after(response.headers.get("Retry-After"))

    # -- the send ----------------------------------------------------------------------

    def open(self) -> None:
        if self._session is None:
            session = requests.Session()
            # No automatic retries: a POST retried underneath us after the provider
            # got it would send the same mails twice. Retrying is the campaign's decision.
            adapter = HTTPAdapter(max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._session = session
            try:
                self.check_key()
            except BaseException:
                self.close()
                raise

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        """An authenticated GET for `check_key`; a refused key raises TransportError."""
        assert self._session is not None
        try:
            response = self._session.get(url, timeout=(CONNECT_TIMEOUT, self.timeout), **kwargs)
        except requests.RequestException as err:
            raise TransportError(f"cannot reach {self.provider} to check the key ({_reason(err)})") from err
        self.refuse_key(response)
        return response

    def refuse_key(self, response: requests.Response) -> None:
        """TransportError naming the key's variable when the provider refused it (401/403)."""
        if response.status_code in (401, 403):
            raise TransportError(
                f"{self.provider} refused the key ({response.status_code} {_excerpt(response)}); "
                f"check {self.key_variable}"
            )

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    def send_batch(self, messages: Sequence["OutgoingMessage"]) -> list[SendResult]:
        self.open()
        by_id: dict[int, SendResult] = {}
        throttled: SendResult | None = None
        for group in self.calls(messages):
            # once the provider asked us to slow down, the rest of the batch waits as well
            results = self._post(group) if throttled is None else results_for(
                group, Status.RETRY, throttled.code, f"not sent: {self.provider} asked to wait",
                retry_after=throttled.retry_after)
            for message, result in zip(group, results):
                by_id[id(message)] = result
            throttled = throttled or next((r for r in results if r.code == 429), None)
        return [by_id[id(message)] for message in messages]

    def _post(self, group: Sequence["OutgoingMessage"]) -> list[SendResult]:
        assert self._session is not None
        try:
            response = self._session.post(self.endpoint, timeout=(CONNECT_TIMEOUT, self.timeout),
                                          **self.request(group))
        except requests.RequestException as err:
            return self._failed(group, err)
        self.refuse_key(response)
        if response.status_code == 429 or response.status_code >= 500:
            return results_for(group, Status.RETRY, response.status_code, _excerpt(response),
                               retry_after=self.wait(response))
        if response.status_code >= 400:
            return self.refused(group, response)
        return self.parse(group, response)

    def refused(self, group: Sequence["OutgoingMessage"], response: requests.Response) -> list[SendResult]:
        """The provider refused the whole request (4xx): final for every message in it."""
        return results_for(group, Status.REJECTED, response.status_code, _excerpt(response))

    def _failed(self, group: Sequence["OutgoingMessage"], err: requests.RequestException) -> list[SendResult]:
        if not_sent(err):
            return results_for(group, Status.RETRY, None,
                               f"cannot reach {self.provider} ({_reason(err)}); nothing was sent")
        return results_for(group, Status.UNKNOWN, None,
                           f"no answer from {self.provider} after the request was sent ({_reason(err)}); "
                           "these messages may have gone out")

    def unsupported(self, feature: str) -> TransportError:
        """A feature this provider lacks, said loudly instead of dropped quietly."""
        return TransportError(f"{self.provider} does not support {feature}")


def not_sent(err: requests.RequestException) -> bool:
    """True when the request never left: no connection could be made."""
    if isinstance(err, requests.ConnectTimeout):
        return True
    if not isinstance(err, requests.ConnectionError) or isinstance(err, requests.ReadTimeout):
        return False
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, NewConnectionError):
            return True
        reason = getattr(cause, "reason", None)
        inner = cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None
        cause = reason if isinstance(reason, BaseException) else inner or cause.__cause__
    return False


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def header(message: "OutgoingMessage", name: str) -> str | None:
    """The value of one of the message's own headers, by case-insensitive name."""
    lowered = name.lower()
    return next((value for key, value in message.headers if key.lower() == lowered), None)


def own_headers(message: "OutgoingMessage", not_headers: frozenset[str]) -> dict[str, str]:
    """The message's headers except those the provider's API sets from its own fields."""
    return {name: value for name, value in message.headers if name.lower() not in not_headers}


def address(value: str) -> dict[str, str]:
    """{"email": …, "name": …} from an address header such as `Lotte <lotte@example.org>`."""
    name, addr = email.utils.parseaddr(value)
    return {"email": addr, "name": name} if name else {"email": addr}


def seconds(value: str | None) -> float | None:
    """A header holding a number of seconds (e.g. a rate-limit reset), or None."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def json_or_none(response: requests.Response) -> Any:
    """The answer's JSON, or None when it is not JSON (a malformed answer)."""
    try:
        return response.json()
    except ValueError:
        return None


def _excerpt(response: requests.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:300] or response.reason or ""


def _reason(err: BaseException) -> str:
    return type(err).__name__


def values_by_part(message: "OutgoingMessage", name: Callable[[str, str], str]) -> dict[str, str]:
    """A recipient's marker values under the provider's variable names (`name(marker, part)`):
    escaped for the HTML part, as they are for the text part."""
    values: dict[str, str] = {}
    for marker, value in message.values.items():
        values[name(marker, "html")] = html.escape(value, quote=True)
        values[name(marker, "text")] = value
    return values
