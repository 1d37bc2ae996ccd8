"""What an SMTP server receives for long names and internationalised domains (raw bytes)."""
from __future__ import annotations

from email import message_from_bytes, policy
import base64
import dataclasses
import re

from postbode import message
from postbode.audience import Recipient
from postbode.config import Settings
from postbode.render import Rendered
from postbode.transports import Status, open_transport

from conftest import REPO

HTML = ('<html lang="nl"><body><p>__PB_GREETING__</p>'
        '<a href="__PB_WEB_URL__">web</a> <a href="__PB_UNSUBSCRIBE_URL__">afmelden</a></body></html>')
TEXT = "__PB_GREETING__\n\nAfmelden: __PB_UNSUBSCRIBE_URL__\n"
GREETINGS = {"formal": "Geachte __PB_NAME__,", "formal_anonymous": "Geachte lezer,"}


def _variant(sender_email: str = "nieuwsbrief@example.org",
             settings: Settings | None = None) -> message.PreparedVariant:
    settings = settings or _settings(sender_email)
    rendered = Rendered(newsletter_id="2018-07-resultaten", locale="nl", view=None,
                        subject="Resultaten 2018", preheader="", html=HTML, text=TEXT, lang="nl",
                        direction="ltr", greetings=GREETINGS)
    return message.prepare(rendered, settings)


def _settings(sender_email: str = "nieuwsbrief@example.org") -> Settings:
    return Settings(root=REPO, sender_name="Coalitie", sender_email=sender_email,
                    base_url="https://nieuwsbrief.example.org",
                    secret_key="header-test-key-0123456789abcdef0123",
                    list_id="Nieuwsbrief <nieuwsbrief.example.org>")


def _display_name(value: str) -> str:
    """The name of an address header as RFC 2047 6.2 reads it: whitespace between adjacent
    encoded words is dropped (Python's own phrase parser keeps it)."""
    words = re.findall(r"=\?utf-8\?b\?([A-Za-z0-9+/=]+)\?=", value)
    if words:
        return "".join(base64.b64decode(w).decode("utf-8") for w in words)
    name = " ".join(value.rsplit("<", 1)[0].split())
    return name[1:-1] if name.startswith('"') else name


def _sent(smtp_relay, settings, *mails):
    with open_transport(smtp_relay.url, settings, env={}) as transport:
        results = transport.send_batch(list(mails))
    assert [r.status for r in results] == [Status.SENT] * len(mails), results
    return {mail.rcpt_tos[0]: mail for mail in smtp_relay.received}


def _header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def _to_lines(raw: bytes) -> list[bytes]:
    """The raw lines of the To header: its first line and the folded ones after it."""
    lines = _header_block(raw).split(b"\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(b"To: "))
    end = next(i for i in range(start + 1, len(lines)) if not lines[i][:1] in (b" ", b"\t"))
    return lines[start:end]


def test_a_1200_character_name_is_folded_and_capped(smtp_relay):
    settings, variant = _settings(), _variant()
    long_ascii = " ".join(["Wilhelmina"] * 110)[:1200]
    long_utf8 = "Zoë " * 300
    mails = [message.build(variant, Recipient(1, "lang@example.org", long_ascii, "nl", "formal", None,
                                              "everyone"), "c1", settings),
             message.build(variant, Recipient(2, "zoe@example.org", long_utf8, "nl", "formal", None,
                                              "everyone"), "c1", settings),
             message.build(variant, Recipient(3, "kort@example.org", "A" * 1200, "nl", "formal", None,
                                              "everyone"), "c1", settings)]
    received = _sent(smtp_relay, settings, *mails)
    for address, name in (("lang@example.org", long_ascii), ("zoe@example.org", long_utf8),
                          ("kort@example.org", "A" * 1200)):
        raw = received[address].raw
        lines = _to_lines(raw)
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        if " " in name:                   # folds at its spaces, or is encoded word by word
            assert max(len(line) for line in lines) <= 78, address
        parsed = message_from_bytes(raw, policy=policy.SMTP)
        shown = _display_name(b" ".join(line.strip() for line in lines)[4:].decode("ascii"))
        assert len(shown) <= message.MAX_NAME_SHOWN and shown.endswith("…")
        assert shown[:-1].rstrip() == " ".join(name.split())[:len(shown) - 1].rstrip()
        assert parsed["To"].addresses[0].addr_spec == address


def test_an_idn_domain_goes_out_as_punycode_in_envelope_and_headers(smtp_relay):
    settings, variant = _settings("nieuws@bücher.example"), _variant("nieuws@bücher.example")
    recipient = Recipient(1, "user@bücher.example", "Jürgen", "nl", "formal", None, "everyone")
    mail = message.build(variant, recipient, "c1", settings)
    assert mail.rcpt_to == "user@xn--bcher-kva.example" and not mail.needs_smtputf8
    assert mail.recipient.email == "user@bücher.example"        # shown as typed
    received = _sent(smtp_relay, settings, mail)
    got = received["user@xn--bcher-kva.example"]
    assert got.mail_from == "nieuws@xn--bcher-kva.example"
    head = _header_block(got.raw)
    assert head.isascii()
    assert b" <user@xn--bcher-kva.example>\r\n" in head
    assert b"<nieuws@xn--bcher-kva.example>" in head
    assert "bücher".encode() not in got.raw


def test_an_idn_sender_with_a_non_ascii_name_sends_ascii_headers(smtp_relay):
    # a server without SMTPUTF8 must not get raw UTF-8 in From: the name goes as RFC 2047 words
    settings = _settings("nieuws@bücher.example")
    settings = dataclasses.replace(settings, sender_name="Coalitie Kinderbescherming — Één")
    variant = _variant("nieuws@bücher.example", settings)
    mail = message.build(variant, Recipient(1, "user@example.org", None, "nl", "formal", None, "everyone"),
                         "c1", settings)
    assert not mail.eight_bit
    got = _sent(smtp_relay, settings, mail)["user@example.org"]
    head = _header_block(got.raw)
    assert head.isascii() and b"=?utf-8?" in head
    parsed = message_from_bytes(got.raw, policy=policy.SMTP)
    assert parsed["From"].addresses[0].display_name == "Coalitie Kinderbescherming — Één"
    assert parsed["From"].addresses[0].addr_spec == "nieuws@xn--bcher-kva.example"


def test_a_non_ascii_local_part_keeps_needing_smtputf8(smtp_relay):
    settings, variant = _settings(), _variant()
    mail = message.build(variant, Recipient(1, "jürgen@bücher.example", None, "nl", "formal", None,
                                            "everyone"), "c1", settings)
    assert mail.rcpt_to == "jürgen@xn--bcher-kva.example" and mail.needs_smtputf8
    received = _sent(smtp_relay, settings, mail)
    assert list(received) == ["jürgen@xn--bcher-kva.example"]
