"""The footer's "why you receive this" is the reason of the list(s) that put the reader in the send."""
from __future__ import annotations

import pytest

from postbode import build, message, tokens
from postbode.audience import Recipient

SAMPLE = "newsletters/2018-07-resultaten.yaml"


@pytest.fixture
def variants(settings):
    signing, _ = tokens.with_development_key(settings)
    result = build.build_variants(settings.root / SAMPLE, ["nl", "en"], [None, "funders"], signing)
    return signing, {key: message.prepare(v, signing) for key, v in result.variants.items()}


def footer_of(signing, variants, locale: str, view: str | None, segment: str) -> str:
    reader = Recipient(1, "lezer@example.org", "Lotte", locale, "formal", view, segment)
    mail = message.build(variants[(locale, view)], reader, "c1", signing)
    assert mail.html.count("__PB_") == 0 and mail.text.count("__PB_") == 0
    return " ".join(mail.text.split())


@pytest.mark.parametrize("locale, view, segment, reason", [
    ("nl", "funders", "funders", "van Coalitie tegen seksuele kinderuitbuiting omdat uw fonds ons werk financiert."),
    ("nl", None, "subscribers", "omdat u zich hebt aangemeld voor onze nieuwsbrief."),
    ("nl", None, "major_donors", "omdat u ons werk met een gift steunt."),
    ("nl", None, "everyone", "omdat u op een van onze verzendlijsten staat."),
    ("en", "funders", "funders", "because your foundation funds our work."),
    ("en", None, "subscribers", "because you signed up for our newsletter."),
])
def test_the_footer_gives_the_reason_of_the_readers_lists(variants, locale, view, segment, reason):
    signing, prepared = variants
    text = footer_of(signing, prepared, locale, view, segment)
    assert reason in text
    if segment != "subscribers":
        assert "aangemeld voor onze nieuwsbrief" not in text and "signed up" not in text


def test_the_html_footer_carries_the_reason_escaped(variants):
    signing, prepared = variants
    reader = Recipient(1, "fonds@example.org", None, "nl", "formal", "funders", "funders")
    html = message.build(prepared[("nl", "funders")], reader, "c1", signing).html
    assert "omdat uw fonds ons werk financiert" in html


def test_a_web_version_gives_the_general_reason(variants):
    _, prepared = variants
    html, text = message.fill(prepared[("nl", None)], {})
    assert "omdat u op een van onze verzendlijsten staat" in text and "__PB_REASON__" not in html
