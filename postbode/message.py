"""Message stage: per recipient, personalised bytes from a prepared variant (substitution only).

`prepare` does everything that is the same for every recipient of a variant
once: it splits the inlined HTML and the text on the markers, checks and
folds the constant headers, and picks the MIME boundary. `build` then only
fills in the recipient's greeting and links and adds the personal headers;
`OutgoingMessage.as_bytes` encodes the two bodies and joins pre-encoded lines.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.policy
import hashlib
import html as html_lib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email.utils import format_datetime

from postbode import tokens
from postbode.bounces import verp
from postbode.audience import Recipient
from postbode.config import Settings
from postbode.errors import ConfigError, HeaderInjectionError, TemplateError

if TYPE_CHECKING:
    from postbode.render import Rendered

GREETING = "__PB_GREETING__"
NAME = "__PB_NAME__"
UNSUBSCRIBE_URL = "__PB_UNSUBSCRIBE_URL__"
PREFERENCES_URL = "__PB_PREFERENCES_URL__"
WEB_URL = "__PB_WEB_URL__"
MARKERS = (GREETING, UNSUBSCRIBE_URL, PREFERENCES_URL, WEB_URL)

_SPLIT = re.compile("(" + "|".join(MARKERS) + ")")
_ANY_MARKER = re.compile(r"__PB_[A-Z_]+__")
_NAME_SPLIT = re.compile(f"({NAME})")
# CR, LF and NUL end or corrupt a header; the others are line breaks to str.splitlines().
_FORBIDDEN = re.compile("[\r\n\0\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ADDRESS_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_CRLF = b"\r\n"
_POLICY = email.policy.SMTP
_POLICY_UTF8 = email.policy.SMTPUTF8
_MAX_SHORT = 78


@dataclass(frozen=True)
class Template:
    """A text split once on its markers: literal, marker, literal, … literal."""

    parts: tuple[str, ...]

    @classmethod
    def split(cls, text: str, pattern: re.Pattern[str] = _SPLIT) -> "Template":
        return cls(tuple(pattern.split(text)))

    def fill(self, values: Mapping[str, str]) -> str:
        """The text with each marker replaced by its value (missing values become empty)."""
        parts = list(self.parts)
        parts[1::2] = [values.get(marker, "") for marker in parts[1::2]]
        return "".join(parts)

    @property
    def markers(self) -> set[str]:
        return set(self.parts[1::2])


@dataclass(frozen=True)
class PreparedVariant:
    """One rendered, inlined variant made ready for fast per-recipient building."""

    rendered: Any                               # the inlined render.Rendered
    html: Template
    text: Template
    greetings: Mapping[str, Template]           # formal, informal, *_anonymous; split on NAME
    web_url: str
    subject: str
    mail_from: str
    from_header: str
    reply_to: str | None
    list_id: str
    content_language: str
    domain: str                                 # Message-IDs are @ this domain
    timezone: dt.tzinfo
    boundary: str
    header_lines: Mapping[tuple[str, str], bytes]  # pre-folded constant headers


@dataclass
class OutgoingMessage:
    """One personalised mail, ready for a transport."""

    recipient: Recipient
    message_id: str                       # "<…@…>", deterministic per (campaign, recipient)
    mail_from: str                        # envelope sender (bare address)
    rcpt_to: str                          # envelope recipient (bare address)
    subject: str
    headers: list[tuple[str, str]]        # every header, in order, values already checked
    html: str
    text: str
    variant: Any = None                   # the PreparedVariant it was built from
    values: Mapping[str, str] = field(default_factory=dict)  # marker → raw value
    return_path: str | None = None        # VERP envelope sender for SMTP ([bounces] domain)
    _bytes: bytes | None = field(default=None, repr=False)
    _lines: dict[tuple[str, str], bytes] = field(default_factory=dict, repr=False)

    @property
    def needs_smtputf8(self) -> bool:
        """True when an envelope address is not ASCII (the SMTP server must offer SMTPUTF8)."""
        return not (self.mail_from.isascii() and self.rcpt_to.isascii())

    def as_bytes(self) -> bytes:
        """RFC 5322 bytes of the whole message, built once."""
        if self._bytes is None:
            self._bytes = _assemble(self)
        return self._bytes


def prepare(rendered: "Rendered", settings: Settings) -> PreparedVariant:
    """Split and check one variant once, so each recipient costs only substitution."""
    label = _label(rendered)
    html_t, text_t = Template.split(rendered.html), Template.split(rendered.text)
    _check_markers(label, html_t, text_t)
    constant = _constant_headers(rendered, settings, label)
    utf8_sender = not settings.sender_email.isascii()
    return PreparedVariant(
        rendered=rendered, html=html_t, text=text_t,
        greetings={kind: Template.split(text, _NAME_SPLIT)
                   for kind, text in (rendered.greetings or {}).items()},
        web_url=web_url(settings, rendered.newsletter_id, rendered.locale, rendered.view),
        subject=constant["Subject"], mail_from=settings.sender_email,
        from_header=constant["From"], reply_to=constant.get("Reply-To"),
        list_id=constant["List-Id"], content_language=constant["Content-Language"],
        domain=_domain(settings.sender_email), timezone=_timezone(settings),
        boundary=_boundary(rendered),
        header_lines={(name, value): _header_line(name, value, name == "From" and utf8_sender)
                      for name, value in [*constant.items(),
                                          ("Subject", "[TEST] " + constant["Subject"])]},
    )


def _constant_headers(rendered: "Rendered", settings: Settings, label: str) -> dict[str, str]:
    """The headers every recipient of a variant shares, each checked against injection."""
    headers = {
        "From": _checked("From", _address(settings.sender_name, settings.sender_email),
                         "[sender] name and email in postbode.toml"),
        "Subject": _checked("Subject", rendered.subject,
                            f"the subject of {label} (newsletter YAML or its translation)"),
        "List-Id": _checked("List-Id", settings.list_id, "[mail] list_id in postbode.toml"),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Content-Language": _checked("Content-Language", rendered.lang or rendered.locale,
                                     f"the locale of {label}").replace("_", "-"),
    }
    if settings.reply_to:
        headers["Reply-To"] = _checked("Reply-To", settings.reply_to,
                                       "[sender] reply_to in postbode.toml")
    return headers


def build(variant: PreparedVariant, recipient: Recipient, campaign_id: str, settings: Settings,
          *, test: bool = False) -> OutgoingMessage:
    """The personalised mail for one recipient: markers filled, personal headers added."""
    name = (recipient.name or "").strip()
    values = {
        GREETING: greeting(variant, recipient.formality, name),
        UNSUBSCRIBE_URL: link(settings, "u", tokens.sign(settings, "unsubscribe", recipient.email)),
        PREFERENCES_URL: link(settings, "p", tokens.sign(settings, "preferences", recipient.email)),
        WEB_URL: variant.web_url,
    }
    html, text = fill(variant, values)
    who = f"subscriber {recipient.subscriber_id} ({recipient.email!r})"
    to = _checked("To", _address(name, recipient.email), f"the name or address of {who}")
    message_id = make_message_id(campaign_id, recipient.email, variant.domain)
    subject = "[TEST] " + variant.subject if test else variant.subject
    unsubscribe = _checked("List-Unsubscribe", _list_unsubscribe(values, settings),
                           "base_url ([web] in postbode.toml or POSTBODE_BASE_URL) "
                           "or [mail] unsubscribe_mailto")
    return OutgoingMessage(recipient=recipient, message_id=message_id,
                           mail_from=variant.mail_from, rcpt_to=recipient.email.strip(),
                           subject=subject, html=html, text=text, variant=variant, values=values,
                           headers=_headers(variant, to, subject, message_id, unsubscribe),
                           return_path=verp.envelope_sender(settings, message_id),
                           _lines={("To", to): _address_line("To", name, recipient.email)})


def _headers(variant: PreparedVariant, to: str, subject: str, message_id: str,
             unsubscribe: str) -> list[tuple[str, str]]:
    """Every header of one message, in order (MIME-Version and Content-Type come in as_bytes)."""
    reply_to = [("Reply-To", variant.reply_to)] if variant.reply_to else []
    return [
        ("From", variant.from_header),
        *reply_to,
        ("To", to),
        ("Subject", subject),
        ("Date", format_datetime(dt.datetime.now(variant.timezone))),
        ("Message-ID", message_id),
        ("List-Id", variant.list_id),
        ("List-Unsubscribe", unsubscribe),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Content-Language", variant.content_language),
    ]


def fill(variant: PreparedVariant, values: Mapping[str, str]) -> tuple[str, str]:
    """(html, text) of a variant with raw marker values filled in, escaped for HTML."""
    escaped = {marker: html_lib.escape(value, quote=True) for marker, value in values.items()}
    return variant.html.fill(escaped), variant.text.fill(values)


def greeting(variant: PreparedVariant, formality: str | None, name: str | None) -> str:
    """The greeting as plain text: formal or informal, with the name or anonymous."""
    register = formality if formality in ("formal", "informal") else "formal"
    name = (name or "").strip()
    keys = [register, f"{register}_anonymous"] if name else [f"{register}_anonymous"]
    keys += ["formal_anonymous", "informal_anonymous"]
    for key in keys:
        if key in variant.greetings:
            return variant.greetings[key].fill({NAME: name})
    return ""


def link(settings: Settings, kind: str, token: str) -> str:
    """`{base_url}/{kind}/{token}`, the token percent-encoded."""
    return f"{settings.base_url}/{kind}/{quote(token, safe='')}"


def web_url(settings: Settings, newsletter_id: str, locale: str, view: str | None) -> str:
    """The public web version of one variant."""
    parts = [newsletter_id, locale] + ([view] if view else [])
    return f"{settings.base_url}/v/" + "/".join(quote(p, safe="") for p in parts)


def make_message_id(campaign_id: str, email_address: str, domain: str) -> str:
    """`<hash@domain>`, the same for the same (campaign, recipient) on every run."""
    key = f"{campaign_id}\n{email_address.strip().lower()}".encode("utf-8")
    return f"<{hashlib.sha256(key).hexdigest()[:32]}@{domain}>"


def _checked(name: str, value: str, source: str) -> str:
    """The value, if it has no CR, LF, NUL or other line break; else HeaderInjectionError."""
    bad = _FORBIDDEN.search(value)
    if bad:
        raise HeaderInjectionError(
            f"the {name} header would contain a line break or NUL character "
            f"({bad.group()!r} at position {bad.start()}), taken from {source}; "
            "remove it there (it could add hidden recipients or headers)"
        )
    return value


def _check_markers(label: str, html_t: Template, text_t: Template) -> None:
    for kind, template in (("HTML", html_t), ("text", text_t)):
        if UNSUBSCRIBE_URL not in template.markers:
            raise TemplateError(
                f"{label}: the {kind} part has no unsubscribe link ({UNSUBSCRIBE_URL}); "
                "every mail needs one: add it to the template's footer"
            )
        unknown = sorted(set(_ANY_MARKER.findall("".join(template.parts[0::2]))))
        if unknown:
            raise TemplateError(
                f"{label}: the {kind} part contains unknown markers {', '.join(unknown)}; "
                f"use only {', '.join(MARKERS)} ({NAME} only inside greetings)"
            )


def _address(name: str | None, address: str) -> str:
    address = address.strip()
    if not name:
        return address
    if _ADDRESS_SPECIALS.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def _list_unsubscribe(values: Mapping[str, str], settings: Settings) -> str:
    value = f"<{values[UNSUBSCRIBE_URL]}>"
    if settings.unsubscribe_mailto:
        value += f", <mailto:{settings.unsubscribe_mailto}?subject=unsubscribe>"
    return value


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip() or "localhost"
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain


def _timezone(settings: Settings) -> dt.tzinfo:
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(
            f"[i18n] timezone {settings.timezone!r} in postbode.toml is not a known time zone; "
            "use a name such as Europe/Amsterdam"
        ) from err


def _boundary(rendered: "Rendered") -> str:
    # "=_" never occurs in quoted-printable or base64 output, so it cannot clash with a body.
    digest = hashlib.sha256(f"{rendered.newsletter_id}/{rendered.locale}/{rendered.view}"
                            .encode("utf-8")).hexdigest()[:24]
    return f"=_pb_{digest}"


def _label(rendered: "Rendered") -> str:
    view = f", view {rendered.view}" if rendered.view else ""
    return f"newsletter {rendered.newsletter_id} ({rendered.locale}{view})"


# --- encoding: the bytes of one message -------------------------------------------------

def _header_line(name: str, value: str, utf8: bool = False) -> bytes:
    """One header, folded and encoded (RFC 2047 for non-ASCII unless SMTPUTF8), ending in CRLF."""
    if value.isascii() and len(name) + 2 + len(value) <= _MAX_SHORT:
        return f"{name}: {value}\r\n".encode("ascii")
    if name == "List-Unsubscribe" and value.isascii():
        # URLs in angle brackets must stay intact: fold only between them.
        return (f"{name}: " + ",\r\n ".join(value.split(", ")) + "\r\n").encode("ascii")
    policy = _POLICY_UTF8 if utf8 else _POLICY
    folded = policy.header_factory(name, value).fold(policy=policy)
    return folded.encode("utf-8" if utf8 else "ascii")


def _address_line(name: str, display: str, address: str) -> bytes:
    """An address header without the header parser: a non-ASCII name becomes RFC 2047 words."""
    address = address.strip()
    if not display:
        return f"{name}: {address}\r\n".encode("utf-8")
    if display.isascii():
        line = f"{name}: {_address(display, address)}\r\n"
        return line.encode("ascii") if len(line) <= 998 else _header_line(name, line[len(name) + 2:-2])
    words = "\r\n ".join(f"=?utf-8?b?{base64.b64encode(chunk.encode('utf-8')).decode('ascii')}?="
                          for chunk in _chunks(display, 45))
    return f"{name}: {words}\r\n <{address}>\r\n".encode("utf-8")


def _chunks(text: str, max_bytes: int) -> list[str]:
    """`text` cut on character boundaries into pieces of at most `max_bytes` UTF-8 bytes."""
    chunks, current, size = [], [], 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > max_bytes:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    chunks.append("".join(current))
    return chunks


def _assemble(message: OutgoingMessage) -> bytes:
    variant = message.variant
    cache = variant.header_lines if isinstance(variant, PreparedVariant) else {}
    boundary = variant.boundary if isinstance(variant, PreparedVariant) else \
        "=_pb_" + hashlib.sha256(message.message_id.encode()).hexdigest()[:24]
    utf8 = message.needs_smtputf8
    own = message._lines
    head = [own.get(h) or cache.get(h) or _header_line(h[0], h[1], utf8) for h in message.headers]
    delimiter = f"--{boundary}\r\n".encode("ascii")
    return b"".join([
        *head,
        b"MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'.encode("ascii"),
        delimiter,
        b'Content-Type: text/plain; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        _quoted_printable(message.text), _CRLF,
        delimiter,
        b'Content-Type: text/html; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n",
        _base64(message.html),
        f"--{boundary}--\r\n".encode("ascii"),
    ])


def _quoted_printable(text: str) -> bytes:
    """Readable for Latin text and safe for any line length (soft breaks at 76)."""
    return binascii.b2a_qp(_lf_bytes(text), istext=True).replace(b"\n", _CRLF)


def _base64(text: str) -> bytes:
    """Compact for every script and several times faster than quoted-printable for the HTML."""
    canonical = _lf_bytes(text).replace(b"\n", _CRLF)  # text in canonical form has CRLF breaks
    encoded = binascii.b2a_base64(canonical, newline=False)
    # One C call and slicing beats base64.encodebytes, which calls into C once per line.
    lines = [encoded[i:i + 76] for i in range(0, len(encoded), 76)]
    lines.append(b"")
    return _CRLF.join(lines)


def _lf_bytes(text: str) -> bytes:
    data = text.encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data
