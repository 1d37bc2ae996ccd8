"""Transports: where messages go (outbox folder, SMTP server, provider API), named by URL.

    outbox://outbox                      .eml files under <project>/outbox/<campaign>/
    smtp://user@host:587?tls=starttls    an SMTP server (password: POSTBODE_SMTP_PASSWORD)
    smtp://127.0.0.1:2525?tls=none       a local relay, no TLS, no login
    smtps://user@host:465                SMTP over implicit TLS
    mailgun://mg.example.org?region=eu   Mailgun (key: POSTBODE_MAILGUN_API_KEY)
    postmark://                          Postmark (token: POSTBODE_POSTMARK_TOKEN)
    ses://eu-west-1                      Amazon SES (credentials: the usual AWS chain)
    brevo://                             Brevo (key: POSTBODE_BREVO_API_KEY)
    mailjet://                           Mailjet (POSTBODE_MAILJET_API_KEY + _SECRET_KEY)
    sendgrid://                          SendGrid (key: POSTBODE_SENDGRID_API_KEY)
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from postbode.errors import TransportError
from postbode.transports.base import SendResult, Status, Transport
from postbode.transports.defaults import default_concurrency

__all__ = ["open_transport", "describe", "default_concurrency", "SendResult", "Status", "Transport",
           "TransportUrl"]

ACCEPTED_FORMS = (
    "outbox://outbox",
    "smtp://user@host:587?tls=starttls",
    "smtp://127.0.0.1:2525?tls=none",
    "smtps://user@host:465",
    "mailgun://DOMAIN?region=eu|us",
    "postmark://",
    "ses://REGION?configuration_set=NAME",
    "brevo://",
    "mailjet://",
    "sendgrid://?region=global|eu",
)

# scheme → module whose `from_url(url, settings, env)` builds the transport; imported on use
SCHEMES = {
    "outbox": "postbode.transports.outbox",
    "smtp": "postbode.transports.smtp",
    "smtps": "postbode.transports.smtp",
    "mailgun": "postbode.transports.mailgun",
    "postmark": "postbode.transports.postmark",
    "ses": "postbode.transports.ses",
    "brevo": "postbode.transports.brevo",
    "mailjet": "postbode.transports.mailjet",
    "sendgrid": "postbode.transports.sendgrid",
}


@dataclass(frozen=True)
class TransportUrl:
    """A transport URL taken apart; `shown` is the URL with any secret masked."""

    raw: str
    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None
    path: str
    query: dict[str, str] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        return describe(self.raw)

    def options(self, allowed: Mapping[str, tuple[str, ...] | None]) -> dict[str, str]:
        """The query options, refusing unknown names and values outside a fixed set."""
        for name, value in self.query.items():
            if name not in allowed:
                names = ", ".join(sorted(allowed)) or "none"
                raise TransportError(
                    f"{self.shown}: unknown option {name!r}; {self.scheme}:// accepts: {names}"
                )
            choices = allowed[name]
            if choices is not None and value not in choices:
                raise TransportError(
                    f"{self.shown}: {name}={value!r} is not one of {', '.join(choices)}"
                )
        return dict(self.query)

    def number(self, name: str, default: float) -> float:
        """A numeric option, e.g. ?timeout=30."""
        if name not in self.query:
            return default
        try:
            value = float(self.query[name])
        except ValueError:
            raise TransportError(f"{self.shown}: {name} must be a number of seconds") from None
        if value <= 0:
            raise TransportError(f"{self.shown}: {name} must be more than 0")
        return value

    def error(self, problem: str) -> TransportError:
        """A TransportError naming this URL (masked) and the accepted forms."""
        return TransportError(f"{self.shown}: {problem}\naccepted forms: " + ", ".join(ACCEPTED_FORMS))


def describe(url: str) -> str:
    """The URL as it may be printed or logged: any password or key replaced by ***."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unreadable transport URL>"
    if password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{hostinfo}").geturl()


def parse_url(url: str) -> TransportUrl:
    """Take a transport URL apart; TransportError if it is not one."""
    shown = describe(url)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        query = dict(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    except ValueError as err:
        raise TransportError(
            f"{shown}: not a transport URL ({err})\naccepted forms: " + ", ".join(ACCEPTED_FORMS)
        ) from None
    if parts.scheme not in SCHEMES:
        raise TransportError(
            f"{shown}: unknown transport {parts.scheme + '://' if parts.scheme else '(no scheme)'}"
            "\naccepted forms: " + ", ".join(ACCEPTED_FORMS)
        )
    return TransportUrl(
        raw=url.strip(), scheme=parts.scheme,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        host=parts.hostname or "", port=port, path=unquote(parts.path), query=query,
    )


def open_transport(url: str, settings, env: Mapping[str, str] | None = None, *,
                   campaign: str | None = None) -> Transport:
    """The transport a URL names, configured but not yet connected (use it with `with`)."""
    parsed = parse_url(url)
    module = importlib.import_module(SCHEMES[parsed.scheme])
    transport: Transport = module.from_url(parsed, settings, os.environ if env is None else env)
    transport.campaign = campaign
    return transport


def secret(url: TransportUrl, env: Mapping[str, str], variable: str, what: str) -> str:
    """A password or key: from the environment variable, else the URL's password part."""
    value = env.get(variable) or url.password
    if not value:
        raise TransportError(
            f"{url.shown}: no {what}; set {variable} in the environment "
            "(or give it as the password part of the URL)"
        )
    return value
