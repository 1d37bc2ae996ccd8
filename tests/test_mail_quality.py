"""The built sample mails as receivers judge them: SpamAssassin, the W3C Nu checker, three MIME parsers."""
from __future__ import annotations

import email
import email.header
import email.policy
import re
from pathlib import Path

import fast_mail_parser
import pytest

from postbode import message, tokens
from postbode.build import build_variants, prepare_all, sample_messages, views_for_segments, write_build
from postbode.audience import Recipient
from postbode.config import Settings
from conftest import SAMPLE

# Rules a mail cannot avoid by its content: it was never relayed, and it is HTML.
UNAVOIDABLE = {"NO_RECEIVED", "NO_RELAYS", "HTML_MESSAGE"}
# What the Nu checker may say: Outlook's mso-* styles, the Office namespace they need, and
# the email meta tags (Apple Mail's x-apple-disable-message-reformatting has no content).
NU_ALLOWED = [
    re.compile(r"CSS: “mso-[a-z-]+”: Property “mso-[a-z-]+” doesn't exist"),
    re.compile(r"Attribute “xmlns:o” not allowed here"),
    re.compile(r"Element “meta” is missing one or more of the following attributes: “content”, “property”"),
]


def signed(settings: Settings) -> Settings:
    return tokens.with_development_key(settings)[0]


def all_samples(settings: Settings) -> dict:
    views = views_for_segments(["funders", "donors"], settings)
    return sample_messages(build_variants(Path(SAMPLE), [], views, settings), signed(settings))


@pytest.mark.parametrize("locale", ["nl", "ar"])
def test_spamassassin_scores_the_sample_at_most_0_1(settings, spamassassin, locale):
    mails = all_samples(settings)
    for view in (None, "funders"):
        result = spamassassin.score(mails[(locale, view)].as_bytes())
        assert result.score <= 0.1, (locale, view, result)
        assert result.rules <= UNAVOIDABLE, (locale, view, result.rules - UNAVOIDABLE)


def test_nu_checker_finds_nothing_but_mso_styles_and_email_meta_tags(settings, nu_checker, tmp_path):
    result = build_variants(Path(SAMPLE), ["nl", "ar", "en"], [None, "funders"], settings)
    built = write_build(result, tmp_path, signed(settings))
    errors = nu_checker.errors([item.html_path for item in built])
    unexpected = [e for e in errors if not any(p.search(e) for p in NU_ALLOWED)]
    assert errors, "the checker reported nothing at all: did it run?"
    assert unexpected == []


def _compat32_subject(raw: bytes) -> str:
    value = email.message_from_bytes(raw)["Subject"]
    unfolded = re.sub(r"\r?\n(?=[ \t])", "", value)    # RFC 5322 unfolding
    return str(email.header.make_header(email.header.decode_header(unfolded)))


def _subjects(raw: bytes) -> tuple[str, str, str]:
    modern = email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
    return modern, _compat32_subject(raw), fast_mail_parser.parse_email(raw).subject


def test_three_parsers_decode_every_sample_subject_identically(settings):
    settings = signed(settings)
    views = views_for_segments(["funders", "donors"], settings)
    result = build_variants(Path(SAMPLE), [], views, settings)
    for key, variant in prepare_all(result, settings).items():
        for test in (False, True):
            mail = message.build(variant, Recipient(1, "lezer@example.org", "Lezer", key[0],
                                                    "formal", key[1], "x"), "c", settings, test=test)
            assert set(_subjects(mail.as_bytes())) == {mail.subject}, (key, test)


@pytest.mark.parametrize("subject", [
    "Resultaten zomer 2018: aangifte, lokpuber en 249 getrainde hotelmedewerkers, en meer nieuws",
    "Über 249 Hotelmitarbeiter — geschult   und  bereit: ein sehr langer Betreff zum Falten",
    "نتائج صيف 2018: الإبلاغ، والمراهق الطُّعم، وتدريب 249 من موظفي الفنادق والمزيد",
    "kort", "een 😀 emoji aan het eind 😀",
])
def test_subject_folding_keeps_every_space_for_every_parser(subject):
    line = message.subject_line(subject)
    assert all(len(part) <= 78 for part in line.split(b"\r\n"))
    assert not re.search(rb"[ \t]\r\n", line), line   # no trailing whitespace before a fold
    raw = line + b"From: a@example.org\r\n\r\nbody\r\n"
    assert set(_subjects(raw)) == {subject}


def test_every_built_sample_has_its_own_message_id(settings):
    ids = [mail.message_id for mail in all_samples(settings).values()]
    assert len(ids) > 1 and len(set(ids)) == len(ids)
