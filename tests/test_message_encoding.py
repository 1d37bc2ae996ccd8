"""Message MIME encoding: bodies encoded once per variant, each recipient's values joined in."""
from __future__ import annotations

import binascii
import email
import email.policy
import random

import pytest

from postbode import message
from postbode.build import build_variants

from test_message import HTML, TEXT, make_rendered, make_settings, reader

PIECES = ["tekst ", "Café ", ".", "..", " ", "\t", "=", "==3D", "\n", "\n.", "\n\n", "a" * 90,
          "woord " * 30, "ʻokina ", "فاطمة ", "🙂", "x\r\ny", "end ",
          "b" * 74 + ".", "." * 80, "é" * 25 + ".", "c" * 75 + " ."]   # dots where soft breaks fall
NAMES = [None, "Anna", "Jürgen Müller", "Zoë <b>&</b>", "فاطمة الزهراء", "a" * 120, "Dot . Name"]


def _random_text(rng: random.Random, markers: list[str]) -> str:
    parts = [rng.choice(PIECES) for _ in range(rng.randrange(0, 30))]
    for marker in markers:
        parts.insert(rng.randrange(0, len(parts) + 1), marker)
    return "".join(parts)


def _parsed(mail: message.OutgoingMessage) -> email.message.EmailMessage:
    return email.message_from_bytes(mail.as_bytes(), policy=email.policy.default)


def _decoded(part) -> str:
    return part.get_content().replace("\r\n", "\n")


def _body_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")


@pytest.mark.parametrize("seed", range(40))
def test_random_variants_and_names_decode_to_exactly_the_filled_text(seed: int) -> None:
    rng = random.Random(seed)
    markers = [message.GREETING, message.UNSUBSCRIBE_URL, message.WEB_URL, message.UNSUBSCRIBE_URL]
    rendered = make_rendered(html=_random_text(rng, markers), text=_random_text(rng, markers))
    settings = make_settings()
    variant = message.prepare(rendered, settings)
    for name in NAMES:
        mail = message.build(variant, reader(name=name), "campaign-1", settings)
        parsed = _parsed(mail)
        assert _decoded(parsed.get_body(("html",))) == mail.html.replace("\r\n", "\n").replace("\r", "\n")
        assert _decoded(parsed.get_body(("plain",))) == mail.text.replace("\r\n", "\n").replace("\r", "\n")
        raw = mail.as_bytes()
        assert all(len(line) <= 76 for line in _body_lines(raw))
        assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
        # no line starts with a dot, so SMTP sends the bytes as they are (nothing to stuff)
        assert b"\n." not in raw and mail.smtp_data() == raw + b".\r\n"


def test_dutch_goes_quoted_printable_and_arabic_base64() -> None:
    settings = make_settings()
    prose = "De coalitie bereikte in 2018 meer kinderen dan ooit; één op de vijf was nieuw. " * 9
    dutch = message.build(message.prepare(make_rendered(html=HTML * 20,
                                                        text=TEXT.replace("Café – tekst", prose)),
                                          settings), reader(), "campaign-1", settings)
    words = "نتائج التحالف ضد الاستغلال الجنسي للأطفال"
    arabic = message.build(message.prepare(make_rendered(html=HTML.replace("Café – tekst", words) * 20,
                                                         text=TEXT.replace("Café – tekst", words * 9),
                                                         locale="ar"), settings),
                           reader(), "campaign-1", settings)
    for part in ("html", "plain"):
        assert _parsed(dutch).get_body((part,))["Content-Transfer-Encoding"] == "quoted-printable"
        assert _parsed(arabic).get_body((part,))["Content-Transfer-Encoding"] == "base64"
    assert _decoded(_parsed(arabic).get_body(("html",))) == arabic.html
    assert _decoded(_parsed(arabic).get_body(("plain",))) == arabic.text


def test_the_sample_dutch_newsletter_is_smaller_in_quoted_printable(project) -> None:
    keyed = make_settings(root=project)
    result = build_variants(project / "newsletters/2018-07-resultaten.yaml", ["nl"], [None], keyed)
    mail = message.build(message.prepare(result.variant("nl"), keyed), reader(), "campaign-1", keyed)
    html_part = _parsed(mail).get_body(("html",))
    assert html_part["Content-Transfer-Encoding"] == "quoted-printable"
    as_base64 = message._b64_lines(message._canonical(mail.html))
    assert len(html_part.get_payload()) < 0.9 * len(as_base64)
    assert _decoded(html_part) == mail.html


def test_each_variant_body_is_encoded_once_not_per_recipient() -> None:
    settings = make_settings()
    variant = message.prepare(make_rendered(html=HTML + "<!-- once -->", text=TEXT + "once\n"), settings)
    before = message._encoded.cache_info().misses
    for n in range(25):
        message.build(variant, reader(f"lezer{n}@example.org", name=f"Lezer {n}"), "c", settings).as_bytes()
    assert message._encoded.cache_info().misses - before == 2     # the HTML and the text


def test_a_body_changed_after_build_is_encoded_as_it_is() -> None:
    settings = make_settings()
    variant = message.prepare(make_rendered(), settings)
    mail = message.build(variant, reader(), "campaign-1", settings)
    mail.html = mail.html.replace("Café", "Koffie")
    assert "Koffie" in _decoded(_parsed(mail).get_body(("html",)))


def test_smtp_and_outbox_bytes_never_fill_the_bodies(monkeypatch) -> None:
    settings = make_settings()
    variant = message.prepare(make_rendered(), settings)
    mail = message.build(variant, reader(name="Zoë <b>"), "campaign-1", settings)
    filled = message.fill(variant, mail.values)

    def refuse(*_args):
        raise AssertionError("a body was filled for SMTP or the outbox")

    monkeypatch.setattr(message, "fill", refuse)
    raw, data = mail.as_bytes(), mail.smtp_data()
    monkeypatch.undo()
    assert data.endswith(b"\r\n.\r\n") and len(data) >= len(raw)
    assert (mail.html, mail.text) == filled          # a provider reads them: filled on demand
    assert _decoded(_parsed(mail).get_body(("html",))) == filled[0]
    mail.text = "Anders"
    assert mail.text == "Anders" and mail.html == filled[0]


@pytest.mark.parametrize("seed", range(20))
def test_a_long_link_is_cut_into_soft_broken_lines_that_decode_to_it(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(33, 127) if chr(c) != "="] + ["."] * 20   # dots often
    link = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 400)))
    encoded = message._qp_piece(link, soft_end=True)
    lines = encoded.split(b"\r\n")
    assert lines[-1] == b"" and all(line.endswith(b"=") and len(line) <= 76 for line in lines[:-1])
    assert not any(line.startswith(b".") for line in lines)
    assert binascii.a2b_qp(encoded) == link.encode("ascii")


@pytest.mark.parametrize("sender", ["nieuwsbrief@example.org", "nieuwsbrief@bücher.example",
                                    "nieuwsbrïef@example.org"])
def test_a_built_mail_knows_whether_its_bytes_are_8bit_without_assembling_them(sender: str) -> None:
    # SMTP says BODY=8BITMIME in MAIL FROM, before the mail's data is made
    settings = make_settings(sender_email=sender, sender_name="Coalitie — Ünïcode")
    variant = message.prepare(make_rendered(subject="Résultats 🙂", html=HTML + "فاطمة"), settings)
    for address in ("lezer@example.org", "lezer@bücher.example", "jürgen@example.org"):
        for name in NAMES:
            mail = message.build(variant, reader(address, name=name), "campaign-1", settings)
            assert mail.eight_bit == (not mail.as_bytes().isascii()), (sender, address, name)
    # an internationalised domain is punycode on the wire: only a non-ASCII local part is UTF-8
    assert message.build(variant, reader(), "c", settings).eight_bit == (sender == "nieuwsbrïef@example.org")
