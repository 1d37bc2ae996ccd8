"""Amazon SES: the SES v2 `SendEmail` API with raw MIME, one message per call, through boto3.

The raw form sends postbode's own bytes (`OutgoingMessage.as_bytes`), so every
header goes through unchanged. boto3 signs (SigV4) and finds the credentials the
usual AWS way: environment, shared profile, or the instance's role. Its own
retries are off: a retried SendEmail could send the same mail twice.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from postbode.errors import TransportError
from postbode.transports.base import SendResult, Status, Transport
from postbode.transports.http import retry_after

if TYPE_CHECKING:
    from postbode.message import OutgoingMessage
    from postbode.transports import TransportUrl

API_VARIABLE = "POSTBODE_SES_API_URL"
MESSAGES_PER_CALL = 1            # SendEmail with Content.Raw: one message, its own headers
CREDENTIAL_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
THROTTLE_WAIT = 1.0              # SES limits per second; its answers carry no wait of their own

# SES error codes, by what they mean for the message (or the whole campaign).
THROTTLED = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException",
                       "LimitExceededException"})
BAD_KEY = frozenset({"UnrecognizedClientException", "InvalidClientTokenId", "SignatureDoesNotMatch",
                     "AccessDeniedException", "AccessDenied", "IncompleteSignature",
                     "ExpiredTokenException", "MissingAuthenticationTokenException"})
ACCOUNT = frozenset({"AccountSuspendedException", "SendingPausedException",
                     "MailFromDomainNotVerifiedException", "NotFoundException"})

BATCH_LIMIT = MESSAGES_PER_CALL
EVENTS = ("Bounce", "Complaint")
CREDENTIALS = CREDENTIAL_NAMES[:2]


def from_url(url: "TransportUrl", settings, env: Mapping[str, str]) -> "SesTransport":
    """ses://REGION?configuration_set=NAME (credentials: the usual AWS chain)."""
    options = url.options({"configuration_set": None, "api": None, "timeout": None})
    if not url.host:
        raise url.error("name the AWS region, e.g. ses://eu-west-1")
    credentials = {name.lower(): env[name] for name in CREDENTIAL_NAMES if env.get(name)}
    if ("aws_access_key_id" in credentials) != ("aws_secret_access_key" in credentials):
        raise url.error("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither "
                        "(then AWS_PROFILE or the instance role is used)")
    return SesTransport(url.host, options.get("configuration_set"),
                        options.get("api") or env.get(API_VARIABLE), credentials,
                        url.number("timeout", 60.0))


class SesTransport(Transport):
    """One SendEmail per message; throttling answers become `retry` with a wait."""

    scheme = "ses"
    provider = "Amazon SES"
    max_batch = 50               # claimed together; still one call each

    def __init__(self, region: str, configuration_set: str | None, endpoint: str | None,
                 credentials: Mapping[str, str], timeout: float):
        self.region = region
        self.configuration_set = configuration_set
        self.endpoint = endpoint
        self.credentials = dict(credentials)
        self.timeout = timeout
        self._client: Any = None

    def open(self) -> None:
        if self._client is None:
            client = self._make_client()
            self._check(client)
            self._client = client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        profile = self.credentials.get("aws_profile")
        keys = {k: v for k, v in self.credentials.items() if k != "aws_profile"}
        session = boto3.session.Session(profile_name=profile, region_name=self.region, **keys)
        # total_max_attempts=1: no retries underneath (a SendEmail retried could go out twice)
        config = Config(retries={"total_max_attempts": 1}, connect_timeout=10,
                        read_timeout=self.timeout, user_agent_extra="postbode")
        return session.client("sesv2", endpoint_url=self.endpoint, config=config)

    def _check(self, client: Any) -> None:
        """Prove the credentials (and the configuration set) before any row is claimed."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            if self.configuration_set:
                client.get_configuration_set(ConfigurationSetName=self.configuration_set)
            else:
                client.list_email_identities(PageSize=1)
        except NoCredentialsError:
            raise TransportError("no AWS credentials for Amazon SES; set AWS_ACCESS_KEY_ID and "
                                 "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an "
                                 "instance role") from None
        except ClientError as err:
            raise self._stop(err) from None
        except BotoCoreError as err:
            raise TransportError(f"cannot reach Amazon SES in {self.region} "
                                 f"({type(err).__name__})") from None

    def _stop(self, err: Any) -> TransportError:
        code, text = _error(err)
        if code in BAD_KEY:
            return TransportError(f"Amazon SES refused the credentials ({code}: {text}); check "
                                  "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)")
        if code == "NotFoundException" and self.configuration_set:
            return TransportError(f"Amazon SES has no configuration set {self.configuration_set!r} "
                                  f"in {self.region}; create it or fix configuration_set=")
        return TransportError(f"Amazon SES refused to send ({code}: {text}); fix this in the SES "
                              "console, then send again")

    def send_batch(self, messages: Sequence["OutgoingMessage"]) -> list[SendResult]:
        self.open()
        results: list[SendResult] = []
        for index, message in enumerate(messages):
            result = self._send(message)
            results.append(result)
            if result.status == Status.RETRY and result.code == 429:
                # throttled: the rest of the batch waits too, nothing of it was sent
                results += [SendResult(m.message_id, Status.RETRY, 429, "not sent: SES is "
                                       "throttling this account", retry_after=result.retry_after)
                            for m in messages[index + 1:]]
                break
        return results

    def _send(self, message: "OutgoingMessage") -> SendResult:
        from botocore.exceptions import ClientError

        request: dict[str, Any] = {"FromEmailAddress": message.mail_from,
                                   "Destination": {"ToAddresses": [message.rcpt_to]},
                                   "Content": {"Raw": {"Data": message.as_bytes()}}}
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        started = time.monotonic()
        try:
            answer = self._client.send_email(**request)
        except ClientError as err:
            return self._refused(message, err)
        except Exception as err:  # noqa: BLE001 — botocore's network errors have no common root
            return _lost(message, err, time.monotonic() - started)
        provider_id = answer.get("MessageId") if isinstance(answer, dict) else None
        if not provider_id:
            return SendResult(message.message_id, Status.UNKNOWN, 200,
                              "Amazon SES answered without a MessageId; check before sending again")
        return SendResult(message.message_id, Status.SENT, 200, "accepted", str(provider_id))

    def _refused(self, message: "OutgoingMessage", err: Any) -> SendResult:
        code, text = _error(err)
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in BAD_KEY or code in ACCOUNT:
            raise self._stop(err)
        if code in THROTTLED or "sending rate" in text.lower() or status == 429:
            wait = retry_after(err.response.get("ResponseMetadata", {})
                               .get("HTTPHeaders", {}).get("retry-after"))
            return SendResult(message.message_id, Status.RETRY, 429, f"{code}: {text}",
                              retry_after=wait if wait is not None else THROTTLE_WAIT)
        if isinstance(status, int) and status >= 500:
            return SendResult(message.message_id, Status.RETRY, status, f"{code}: {text}")
        return SendResult(message.message_id, Status.REJECTED, status, f"{code}: {text}")


def _error(err: Any) -> tuple[str, str]:
    error = err.response.get("Error", {})
    return str(error.get("Code", "")), str(error.get("Message", ""))


def _lost(message: "OutgoingMessage", err: Exception, elapsed: float) -> SendResult:
    """No answer: `retry` when no connection was made, else `unknown` (it may have gone out)."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    name = type(err).__name__
    if isinstance(err, (EndpointConnectionError, ConnectTimeoutError)):
        return SendResult(message.message_id, Status.RETRY, None,
                          f"cannot reach Amazon SES ({name}); nothing was sent")
    return SendResult(message.message_id, Status.UNKNOWN, None,
                      f"no answer from Amazon SES after the request was sent ({name}, "
                      f"{elapsed:.1f} s); this message may have gone out")
