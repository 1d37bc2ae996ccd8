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
import functools
import hashlib
import html as html_lib
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email.utils import format_datetime

from postbode import markers, personal, tokens
from postbode.bounces import verp
from postbode.markers import GREETING, NAME, PREFERENCES_URL, REASON, UNSUBSCRIBE_URL, WEB_URL
from postbode.audience import Recipient
from postbode.config import Settings
from postbode.errors import ConfigError, HeaderInjectionError, TemplateError

if TYPE_CHECKING:
    from postbode.render import Rendered

MARKERS = markers.BODY

_SPLIT = markers.SPLIT
_ANY_MARKER = markers.ANY
_NAME_SPLIT = re.compile(f"({NAME})")
# CR, LF and NUL end or corrupt a header; the others are line breaks to str.splitlines().
_FORBIDDEN = re.compile("[\r\n\0\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_ADDRESS_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_CRLF = b"\r\n"
_POLICY = email.policy.SMTP
_POLICY_UTF8 = email.policy.SMTPUTF8
_MAX_SHORT = 78
TEST_HEADER = "X-Postbode-Test"     # on test mails only: which variant this is
_WORD_BYTES = 39                    # UTF-8 bytes per encoded word: 52 base64 chars, a line ≤ 78
_NAME_WORD_BYTES = 45               # in an address header: 60 base64 chars, a line ≤ 74
MAX_NAME_SHOWN = 200                # characters of a display name in To: (the rest is cut)


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
    # (marker, placeholder, how to show it) per personal field used in this variant
    fields: tuple[tuple[str, personal.Placeholder, personal.FieldSpec | None], ...] = ()
    reasons: Mapping[str, str] = field(default_factory=dict)  # segment → why ("" any other)

    @functools.cached_property
    def utf8_headers(self) -> bool:
        """True when a constant header is raw UTF-8 (a sender address that is not ASCII)."""
        return not all(line.isascii() for line in self.header_lines.values())


class _Body:
    """A mail's HTML or text: as given, or filled in from its variant when first read.

    SMTP and the outbox never read them: they join the variant's pre-encoded pieces
    with the recipient's values (`_pieces`), so a campaign does not fill two 30 KB
    strings a mail only to take them apart again. Providers' APIs read them.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.given, self.index = f"_{name}_given", ("html", "text").index(name)

    def __get__(self, mail: "OutgoingMessage | None", owner: type | None = None) -> Any:
        if mail is None:
            return None                  # the dataclass default: fill from the variant
        given = mail.__dict__.get(self.given)
        if given is not None:
            return given
        filled = mail.__dict__.get("_filled")
        if filled is None:
            variant = mail.variant
            filled = fill(variant, mail.values) if isinstance(variant, PreparedVariant) else ("", "")
            mail.__dict__["_filled"] = filled
        return filled[self.index]

    def __set__(self, mail: "OutgoingMessage", value: str | None) -> None:
        mail.__dict__[self.given] = value
        mail.__dict__.pop("_filled", None)


@dataclass
class OutgoingMessage:
    """One personalised mail, ready for a transport."""

    recipient: Recipient
    message_id: str                       # "<…@…>", deterministic per (campaign, recipient)
    mail_from: str                        # envelope sender (bare address)
    rcpt_to: str                          # envelope recipient (bare address)
    subject: str
    headers: list[tuple[str, str]]        # every header, in order, values already checked
    html: _Body = _Body()                 # left out: the variant filled with `values`
    text: _Body = _Body()
    variant: Any = None                   # the PreparedVariant it was built from
    values: Mapping[str, str] = field(default_factory=dict)  # marker → raw value
    return_path: str | None = None        # VERP envelope sender for SMTP ([bounces] domain)
    _bytes: bytes | None = field(default=None, repr=False)
    _lines: dict[tuple[str, str], bytes] = field(default_factory=dict, repr=False)

    @property
    def needs_smtputf8(self) -> bool:
        """True when an envelope address is not ASCII (the SMTP server must offer SMTPUTF8)."""
        return not (self.mail_from.isascii() and self.rcpt_to.isascii())

    @property
    def built(self) -> bool:
        """True for a mail `build` made from a variant: CRLF line ends, headers checked."""
        return type(self) is OutgoingMessage and isinstance(self.variant, PreparedVariant)

    @property
    def eight_bit(self) -> bool:
        """True when the mail's bytes are not all ASCII (SMTP then says BODY=8BITMIME).

        A built mail knows without being assembled: its bodies are quoted-printable or
        base64 and its headers encoded words, unless an address asks for UTF-8.
        """
        if self.built:
            return self.needs_smtputf8 or self.variant.utf8_headers
        return not self.as_bytes().isascii()

    def given(self, kind: str) -> str | None:
        """The HTML or text as given to the message (None: the variant filled with `values`)."""
        return self.__dict__.get(f"_{kind}_given")

    def as_bytes(self) -> bytes:
        """RFC 5322 bytes of the whole message, built once."""
        if self._bytes is None:
            self._bytes = b"".join(_pieces(self))
        return self._bytes

    def smtp_data(self) -> bytes:
        """The bytes SMTP sends after DATA: dot-stuffed (RFC 5321 4.5.2), ending in CRLF.CRLF.

        A built mail has nothing to stuff: no line of it starts with a dot. Its headers
        are checked for line breaks and folded before a space, its quoted-printable
        (`_qp_piece`) writes a dot at the start of a line as =2E, and base64 and the MIME
        lines have none. Scanning 30 KB for one would cost more than the rest of SMTP's
        work on it; tests/test_message_encoding.py holds the promise. Other mails are
        stuffed piece by piece, a variant's large parts once per campaign.
        """
        if self._bytes is not None:
            return dot_stuffed([self._bytes], keep=False)
        if self.built:
            return b"".join([*_pieces(self), _END_OF_DATA])
        return dot_stuffed(_pieces(self))


def prepare(rendered: "Rendered", settings: Settings) -> PreparedVariant:
    """Split and check one variant once, so each recipient costs only substitution."""
    label = _label(rendered)
    html_t, text_t = Template.split(rendered.html), Template.split(rendered.text)
    _check_markers(label, html_t, text_t)
    constant = _constant_headers(rendered, settings, label)
    # Only a local part that is not ASCII keeps the From line in UTF-8: an internationalised
    # domain goes out as punycode, and a name then as RFC 2047 words, as for any sender.
    utf8_sender = not wire_address(settings.sender_email).isascii()
    return PreparedVariant(
        rendered=rendered, html=html_t, text=text_t,
        greetings={kind: Template.split(text, _NAME_SPLIT)
                   for kind, text in (rendered.greetings or {}).items()},
        web_url=web_url(settings, rendered.newsletter_id, rendered.locale, rendered.view),
        subject=constant["Subject"], mail_from=wire_address(settings.sender_email),
        from_header=constant["From"], reply_to=constant.get("Reply-To"),
        list_id=constant["List-Id"], content_language=constant["Content-Language"],
        domain=_domain(settings.sender_email), timezone=_timezone(settings),
        boundary=_boundary(rendered),
        header_lines={(name, value): _constant_line(name, value, name == "From" and utf8_sender)
                      for name, value in constant.items()},
        fields=_field_table(rendered, settings),
        reasons=getattr(rendered, "reasons", None) or {},
    )


def _field_table(rendered: "Rendered", settings: Settings) -> tuple:
    """Each personal field's marker with its placeholder and spec (None if not declared)."""
    used = getattr(rendered, "fields", ())
    specs = personal.available(settings) if used else {}
    return tuple((markers.field(n), p, specs.get(p.field)) for n, p in enumerate(used))


def _constant_line(name: str, value: str, utf8: bool) -> bytes:
    return subject_line(value) if name == "Subject" else _header_line(name, value, utf8)


def test_label(variant: PreparedVariant) -> str:
    """`nl_BE · funders`: which variant a test mail shows (`public` for the public view)."""
    return f"{variant.rendered.locale} · {variant.rendered.view or 'public'}"


def _constant_headers(rendered: "Rendered", settings: Settings, label: str) -> dict[str, str]:
    """The headers every recipient of a variant shares, each checked against injection."""
    headers = {
        "From": _checked("From", _address(settings.sender_name, wire_address(settings.sender_email)),
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
    shown = shown_name(name)
    rcpt_to = wire_address(recipient.email)
    values = {
        GREETING: greeting(variant, recipient.formality, name),
        # the subscriber's opaque key when there is one (test and sample mails have none)
        UNSUBSCRIBE_URL: link(settings, "u", tokens.sign(settings, "unsubscribe", recipient.email,
                                                         subscriber_key=recipient.key)),
        PREFERENCES_URL: link(settings, "p", tokens.sign(settings, "preferences", recipient.email,
                                                         subscriber_key=recipient.key)),
        WEB_URL: variant.web_url,
        REASON: reason(variant, recipient.segment),
        **{marker: personal.value(placeholder, spec, recipient, variant.rendered.locale)
           for marker, placeholder, spec in variant.fields},
    }
    who = f"subscriber {recipient.subscriber_id} ({recipient.email!r})"
    to = _checked("To", _address(shown, rcpt_to), f"the name or address of {who}")
    message_id = make_message_id(campaign_id, recipient.email, variant.domain)
    subject = f"[TEST {test_label(variant)}] {variant.subject}" if test else variant.subject
    unsubscribe = _checked("List-Unsubscribe", _list_unsubscribe(values, settings),
                           "base_url ([web] in postbode.toml or POSTBODE_BASE_URL) "
                           "or [mail] unsubscribe_mailto")
    return OutgoingMessage(recipient=recipient, message_id=message_id,
                           mail_from=variant.mail_from, rcpt_to=rcpt_to,
                           subject=subject, variant=variant, values=values,
                           headers=_headers(variant, to, subject, message_id, unsubscribe, test)
                           + [("Feedback-ID", feedback_id(campaign_id, recipient.segment, variant))],
                           return_path=verp.envelope_sender(settings, message_id),
                           _lines=_personal_lines(to, shown, rcpt_to, subject, test))


def transactional(settings: Settings, recipient: Recipient, subject: str, html: str, text: str,
                  campaign_id: str) -> OutgoingMessage:
    """A mail one person asked for (a sign-up confirmation): no list headers, no unsubscribe."""
    name = (recipient.name or "").strip()
    domain = _domain(settings.sender_email)
    message_id = make_message_id(campaign_id, recipient.email, domain)
    to = _checked("To", _address(name, recipient.email), "the name or address given on the form")
    headers = [("From", _checked("From", _address(settings.sender_name, settings.sender_email),
                                 "[sender] name and email in postbode.toml")),
               *([("Reply-To", settings.reply_to)] if settings.reply_to else []),
               ("To", to),
               ("Subject", _checked("Subject", subject, "the confirmation mail's subject (templates)")),
               ("Date", format_datetime(dt.datetime.now(_timezone(settings)))),
               ("Message-ID", message_id),
               ("Auto-Submitted", "auto-generated"),
               ("Content-Language", recipient.locale.replace("_", "-"))]
    return OutgoingMessage(recipient=recipient, message_id=message_id,
                           mail_from=settings.sender_email, rcpt_to=recipient.email.strip(),
                           subject=subject, headers=headers, html=html, text=text,
                           return_path=verp.envelope_sender(settings, message_id))


def _personal_lines(to: str, name: str, address: str, subject: str, test: bool) -> dict[tuple[str, str], bytes]:
    """Encoded header lines that differ per message (the subject only for a test mail)."""
    lines = {("To", to): _address_line("To", name, address)}
    if test:
        lines[("Subject", subject)] = subject_line(subject)
    return lines


def _headers(variant: PreparedVariant, to: str, subject: str, message_id: str,
             unsubscribe: str, test: bool = False) -> list[tuple[str, str]]:
    """Every header of one message, in order (MIME-Version and Content-Type come in as_bytes)."""
    reply_to = [("Reply-To", variant.reply_to)] if variant.reply_to else []
    marked = [(TEST_HEADER, _checked(TEST_HEADER, _test_header(variant), "the variant"))] if test else []
    return [
        ("From", variant.from_header),
        *reply_to,
        ("To", to),
        ("Subject", subject),
        ("Date", date_now(variant.timezone)),
        ("Message-ID", message_id),
        ("List-Id", variant.list_id),
        ("List-Unsubscribe", unsubscribe),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Content-Language", variant.content_language),
        *marked,
    ]


def _test_header(variant: PreparedVariant) -> str:
    """`locale=nl_BE; view=funders` (ASCII: locales and view names are)."""
    return f"locale={variant.rendered.locale}; view={variant.rendered.view or 'public'}"


def feedback_id(campaign_id: str, segment: str | None, variant: PreparedVariant) -> str:
    """Gmail's feedback loop header, `campaign:list:sender`; its fields may not hold a colon."""
    return _feedback_id(campaign_id, segment or "none", variant.domain)


@functools.lru_cache(maxsize=256)   # the same few for every mail of a campaign
def _feedback_id(*fields: str) -> str:
    return _checked("Feedback-ID", ":".join(re.sub(r"[:\s]+", "-", f) for f in fields),
                    "the campaign id, segment name or sender domain")


_dates: dict[Any, tuple[int, str]] = {}


def date_now(zone: Any) -> str:
    """The Date header for now in `zone`; it shows whole seconds, so it is formatted once a second."""
    second = int(time.time())
    made = _dates.get(zone)
    if made is None or made[0] != second:
        made = _dates[zone] = (second, format_datetime(dt.datetime.fromtimestamp(second, zone)))
    return made[1]


def reason(variant: PreparedVariant, segment: str | None) -> str:
    """Why a member of this segment gets the mail: its lists' reason, else the general one."""
    return variant.reasons.get(segment or "", variant.reasons.get("", ""))


def fill(variant: PreparedVariant, values: Mapping[str, str]) -> tuple[str, str]:
    """(html, text) of a variant with raw marker values filled in, escaped for HTML."""
    values = completed(variant, values)
    return variant.html.fill(_escaped(values)), variant.text.fill(values)


def completed(variant: PreparedVariant, values: Mapping[str, str]) -> Mapping[str, str]:
    """The values with the general reason and the fields' fallbacks where none is given."""
    if REASON not in values:  # a reader we do not know (web versions): the general reason
        values = {**values, REASON: reason(variant, None)}
    if variant.fields:  # a personal field without a value shows its fallback (web versions)
        values = {**{marker: p.fallback or "" for marker, p, _ in variant.fields}, **values}
    return values


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
    """The web version of one variant; a segment view's link carries a signed token (`?t=`)."""
    parts = [newsletter_id, locale] + ([view] if view else [])
    url = f"{settings.base_url}/v/" + "/".join(quote(p, safe="") for p in parts)
    if view is None:
        return url  # the public view: anyone may read it
    return f"{url}?t={quote(view_token(settings, newsletter_id, view), safe='')}"


def view_token(settings: Settings, newsletter_id: str, view: str) -> str:
    """The token that opens one segment view of one newsletter (no person in it)."""
    return tokens.sign(settings, "web", n=newsletter_id, v=view)


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


def shown_name(name: str) -> str:
    """A display name as a header shows it: at most MAX_NAME_SHOWN characters."""
    return name if len(name) <= MAX_NAME_SHOWN else name[:MAX_NAME_SHOWN - 1].rstrip() + "…"


def wire_address(address: str) -> str:
    """The address as it goes on the wire: an internationalised domain in punycode (IDNA).

    `user@bücher.example` is sent as `user@xn--bcher-kva.example`, which every server
    accepts without SMTPUTF8; reports and the journal keep the address as typed. A
    domain IDNA refuses is left as it is (it then needs SMTPUTF8, as a non-ASCII local part does).
    """
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        import idna  # email-validator's own IDNA 2008 / UTS #46 library

        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except (idna.IDNAError, UnicodeError):
        return address


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


def subject_line(subject: str) -> bytes:
    """The Subject header; non-ASCII text as consecutive RFC 2047 encoded words.

    Each word holds whole characters and every space stays inside a word, so no
    whitespace sits between words (decoders drop it there, RFC 2047 §6.2) and all
    parsers read the same subject.
    """
    if subject.isascii():
        return _fold_at_spaces("Subject", subject)
    words = [f"=?utf-8?b?{base64.b64encode(chunk.encode('utf-8')).decode('ascii')}?="
             for chunk in _chunks(subject, _WORD_BYTES)]
    return ("Subject: " + "\r\n ".join(words) + "\r\n").encode("ascii")


def _fold_at_spaces(name: str, value: str) -> bytes:
    """A header folded before spaces, the first part on the name's line (unfolds to `value`).

    ASCII but for an address that is UTF-8 itself (sent with SMTPUTF8).
    """
    line, lines = f"{name}:", []
    for word in value.split(" "):
        if len(line) + 1 + len(word) > _MAX_SHORT and line != f"{name}:":
            lines.append(line)
            line = ""
        line += " " + word
    return ("\r\n".join([*lines, line]) + "\r\n").encode("utf-8")


def _address_line(name: str, display: str, address: str) -> bytes:
    """An address header without the header parser; no line over 78 characters where it can fold.

    An ASCII name folds at its spaces (a single word, at most MAX_NAME_SHOWN long, stays
    whole: far below the 998 of RFC 5322); any other name becomes RFC 2047 encoded words,
    one per line, with the address on a line of its own.
    """
    address = address.strip()
    if not display:
        return f"{name}: {address}\r\n".encode("utf-8")
    if display.isascii():
        return _fold_at_spaces(name, _address(display, address))
    words = "\r\n ".join(f"=?utf-8?b?{base64.b64encode(chunk.encode('utf-8')).decode('ascii')}?="
                          for chunk in _chunks(display, _NAME_WORD_BYTES))
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


def _pieces(message: OutgoingMessage) -> list[bytes]:
    """The message's bytes in pieces: the variant's, shared by every mail of it, and its own."""
    variant = message.variant
    prepared = isinstance(variant, PreparedVariant)
    cache = variant.header_lines if prepared else {}
    boundary = variant.boundary if prepared else \
        "=_pb_" + hashlib.sha256(message.message_id.encode()).hexdigest()[:24]
    utf8 = message.needs_smtputf8
    own = message._lines
    head = [own.get(h) or cache.get(h) or _header_line(h[0], h[1], utf8) for h in message.headers]
    values = completed(variant, message.values) if prepared else message.values
    text_cte, text_body = _body(variant.text if prepared else None, message, values, "text")
    html_cte, html_body = _body(variant.html if prepared else None, message, _escaped(values), "html")
    delimiter = f"--{boundary}\r\n".encode("ascii")
    head += [b"MIME-Version: 1.0\r\n",
             f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'.encode("ascii")]
    return [
        b"".join(head),      # one piece: fewer for dot_stuffed to look at
        delimiter,
        b'Content-Type: text/plain; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: " + text_cte + b"\r\n\r\n",
        *text_body, _CRLF,
        delimiter,
        b'Content-Type: text/html; charset="utf-8"\r\n'
        b"Content-Transfer-Encoding: " + html_cte + b"\r\n\r\n",
        *html_body, _CRLF if html_cte == _QP else b"",   # base64 lines end in CRLF already
        f"--{boundary}--\r\n".encode("ascii"),
    ]


_END_OF_DATA = b".\r\n"    # after the mail's last CRLF
_stuffed_pieces: dict[bytes, bytes] = {}
_SHARED_PIECE = 512      # bytes: a piece this long is a variant's, and its stuffing is kept


def dot_stuffed(pieces: list[bytes], keep: bool = True) -> bytes:
    """RFC 5321 4.5.2 over bytes given in pieces: a line that starts with a dot gets one more;
    then the end of data. A line that starts where one piece meets the next is looked at
    where they meet. `keep`: remember the stuffing of long pieces (a variant's, the same in
    every mail of it)."""
    out: list[bytes] = []
    tail = b"\r\n"          # the last two bytes so far; the data starts a line
    for piece in pieces:
        if not piece:
            continue
        stuffed = _stuffed_piece(piece) if keep else piece.replace(b"\r\n.", b"\r\n..")
        if piece[:1] == b"." and tail == b"\r\n":
            stuffed = b"." + stuffed
        elif piece[:2] == b"\n." and tail[-1:] == b"\r":
            stuffed = b"\n." + stuffed[1:]
        out.append(stuffed)
        tail = piece[-2:] if len(piece) > 1 else (tail + piece)[-2:]  # never copy a long piece
    ends_a_line = bool(out) and tail == b"\r\n"
    out.append(b".\r\n" if ends_a_line else b"\r\n.\r\n")
    return b"".join(out)


def _stuffed_piece(piece: bytes) -> bytes:
    if len(piece) < _SHARED_PIECE:
        return piece.replace(b"\r\n.", b"\r\n..")
    stuffed = _stuffed_pieces.get(piece)          # bytes keep their hash: a lookup is cheap
    if stuffed is None:
        if len(_stuffed_pieces) > 1024:
            _stuffed_pieces.clear()
        stuffed = _stuffed_pieces[piece] = piece.replace(b"\r\n.", b"\r\n..")
    return stuffed


# A body is encoded once per variant, cut at its markers; each recipient adds only the
# encoding of their own values. Quoted-printable pieces end in a soft line break, so
# every piece starts a fresh line. Base64 pieces are kept for each of the three ways the
# bytes before them can end against base64's 3-byte groups, so they join without padding
# in the middle; lines may be shorter than 76 characters, which decoders accept.
_QP, _B64 = b"quoted-printable", b"base64"
# Printable ASCII but "=", spaces only inside, at most 75 characters: its own QP encoding.
_QP_AS_IS = re.compile(r"[!-<>-~](?:[ !-<>-~]{0,73}[!-<>-~])?")
# Printable ASCII without "=" or spaces (a link with its token): cut into lines as it is.
_QP_PLAIN_RUN = re.compile(r"[!-<>-~]+")
_QP_ROOM = 75            # characters of a soft-broken line before its "="


@dataclass(frozen=True)
class _EncodedBody:
    """One body's literal parts, encoded once: QP pieces, or base64 (head, lines, tail) x 3."""

    encoding: bytes
    literals: tuple


def _body(template: Template | None, message: OutgoingMessage, values: Mapping[str, str],
          kind: str) -> tuple[bytes, list[bytes]]:
    """(Content-Transfer-Encoding, the encoded body in pieces) of one part of one message."""
    given = message.given(kind)
    if template is None:
        pieces = None
    elif given is None:       # the template filled with the values, as `fill` does
        pieces = [values.get(marker, "") for marker in template.parts[1::2]]
    else:
        pieces = _values_in(template, given, values)
    if pieces is None:   # not built from this template: encode the whole text
        filled = getattr(message, kind)
        if kind == "text":
            return _QP, [_qp_piece(filled, soft_end=False)]
        return _B64, [_b64_lines(_canonical(filled))]
    encoded = _encoded(template, kind)
    if encoded.encoding == _QP:
        return _QP, _join_qp(encoded.literals, pieces)
    return _B64, _join_b64(encoded.literals, pieces)


def _values_in(template: Template, filled: str, values: Mapping[str, str]) -> list[str] | None:
    """The values as they stand in `filled`, if it is exactly `template` filled with them."""
    parts, position, found = template.parts, 0, []
    for index, part in enumerate(parts):
        if index % 2:
            part = values.get(part, "")
            found.append(part)
        if not filled.startswith(part, position):
            return None
        position += len(part)
    return found if position == len(filled) else None


def _escaped(values: Mapping[str, str]) -> dict[str, str]:
    """The values as `fill` puts them into the HTML."""
    return {marker: html_lib.escape(value, quote=True) for marker, value in values.items()}


@functools.lru_cache(maxsize=256)
def _encoded(template: Template, kind: str) -> _EncodedBody:
    """Encode a variant's literal parts once, in whichever encoding is smaller for them
    (quoted-printable for Latin scripts and markup, base64 for Arabic text)."""
    literals = template.parts[0::2]
    last = len(literals) - 1
    qp = tuple(_qp_piece(text, soft_end=index < last) for index, text in enumerate(literals))
    raw = [_canonical(text) for text in literals]
    if sum(map(len, qp)) <= sum(len(r) for r in raw) * 4 / 3 * 78 / 76:
        return _EncodedBody(_QP, qp)
    return _EncodedBody(_B64, tuple(_b64_offsets(data) for data in raw))


def _join_qp(literals: tuple[bytes, ...], values: list[str]) -> list[bytes]:
    out, done = [literals[0]], {}      # the same link often stands in a mail twice
    for value, literal in zip(values, literals[1:]):
        if value:
            if value not in done:
                done[value] = _qp_piece(value, soft_end=True)
            out.append(done[value])
        out.append(literal)
    return out


def _b64_offsets(data: bytes) -> tuple[tuple[bytes, bytes, bytes], ...]:
    """For k = 0, 1, 2 bytes lent to the group before: (those bytes, encoded lines, rest)."""
    offsets = []
    for k in range(3):
        rest = data[k:]
        cut = len(rest) - len(rest) % 3
        offsets.append((data[:k], _b64_lines(rest[:cut]), rest[cut:]))
    return tuple(offsets)


def _join_b64(literals: tuple, values: list[str]) -> list[bytes]:
    out, carry = [], b""
    for index, offsets in enumerate(literals):
        if index:
            carry += _canonical(values[index - 1])
        head, lines, tail = offsets[-len(carry) % 3]
        chunk = carry + head
        if len(chunk) % 3:      # the literal was too short to complete a group
            carry = chunk
            continue
        out += [_b64_lines(chunk), lines]
        carry = tail
    out.append(_b64_lines(carry))
    return out


def _qp_piece(text: str, soft_end: bool) -> bytes:
    """Quoted-printable of a piece; with `soft_end` it ends in a line break a decoder removes.

    No line of it starts with a dot (it is written =2E there), so SMTP need not
    dot-stuff a mail made of such pieces (`OutgoingMessage.smtp_data`).
    """
    if soft_end and _QP_AS_IS.fullmatch(text) and text[0] != ".":   # most greetings and short links
        return text.encode("ascii") + b"=\r\n"
    if soft_end and _QP_PLAIN_RUN.fullmatch(text):   # a long link: nothing to encode, only cut
        data = text.encode("ascii")
        lines = [data[i:i + _QP_ROOM] for i in range(0, len(data), _QP_ROOM)]
        if not any(line[:1] == b"." for line in lines):
            return b"".join(line + b"=\r\n" for line in lines)
        return _recut(data) + b"=\r\n"
    encoded = binascii.b2a_qp(_lf_bytes(text), istext=True).replace(b"\n", _CRLF)
    soft_end = soft_end and not encoded.endswith(_CRLF) and bool(encoded)
    if len(encoded) > 75 or b"\n." in encoded or encoded[:1] == b".":
        lines = encoded.split(_CRLF)
        last = len(lines) - 1
        # b2a_qp lets a line whose trailing blank it encodes reach 77 characters, a soft
        # break at the end needs room for one "=", and a line may start with a dot.
        encoded = _CRLF.join(_recut(line) if len(line) > 76 or line[:1] == b"." or
                             (soft_end and i == last and len(line) > 75) else line
                             for i, line in enumerate(lines))
    return encoded + b"=\r\n" if soft_end else encoded


_QP_TOKEN = re.compile(rb"=[0-9A-F]{2}|[^=]", re.DOTALL)


def _recut(line: bytes) -> bytes:
    """One encoded line cut again at soft breaks: at most 75 characters before each "=",
    never inside an =XX escape, and no line starting with a dot (it becomes =2E)."""
    soft = line.endswith(b"=")      # b2a_qp's own soft break: an escape never ends in "="
    pieces: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for token in _QP_TOKEN.findall(line[:-1] if soft else line):
        if size + len(token) > _QP_ROOM:
            pieces.append(b"".join(current))
            current, size = [], 0
        if not current and token == b".":
            token = b"=2E"
        current.append(token)
        size += len(token)
    pieces.append(b"".join(current) + (b"=" if soft else b""))
    return b"=\r\n".join(pieces)


def _b64_lines(data: bytes) -> bytes:
    """Base64 in lines of at most 76 characters, each ending in CRLF."""
    encoded = binascii.b2a_base64(data, newline=False)
    # One C call and slicing beats base64.encodebytes, which calls into C once per line.
    return b"".join(encoded[i:i + 76] + _CRLF for i in range(0, len(encoded), 76))


def _canonical(text: str) -> bytes:
    """UTF-8 with CRLF line breaks, the canonical form of text that base64 encodes."""
    return _lf_bytes(text).replace(b"\n", _CRLF)


def _lf_bytes(text: str) -> bytes:
    data = text.encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data
