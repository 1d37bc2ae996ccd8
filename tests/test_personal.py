"""Personal fields: `{field}` in the text, each reader's own value, formatted per locale, on the fast path."""
from __future__ import annotations

from pathlib import Path

import pytest

from postbode import message, personal, tokens
from postbode.audience import Recipient
from postbode.build import build_variants, prepare_all
from postbode.config import Settings
from postbode.errors import ContentError
from conftest import SAMPLE

BODY_LINE = "      aankijken tegen het doen van aangifte."
GIFT = "Dank voor uw gift van {total_given|uw steun}, {voornaam|lezer}."


def write_newsletter(project: Path, insert: str, where: str = BODY_LINE) -> Path:
    text = (project / SAMPLE).read_text(encoding="utf-8")
    assert where in text
    path = project / "newsletters" / "persoonlijk.yaml"
    path.write_text(text.replace(where, f"{where} {insert}"), encoding="utf-8")
    return path


def donor(locale: str, **fields) -> Recipient:
    return Recipient(subscriber_id=3, email="donor@example.org", name="Marieke van Dam",
                     locale=locale, formality="formal", view=None, segment="donors", fields=fields)


def prepared(project: Path, settings: Settings, locales: list[str]) -> dict:
    settings = settings.with_overrides(completeness={})  # every locale may fall back to Dutch text
    signing = tokens.with_development_key(settings)[0]
    path = write_newsletter(project, GIFT)
    return prepare_all(build_variants(path, locales, [None], signing), signing), signing


# Babel puts a no-break space between the amount and the currency sign where the locale has one.
@pytest.mark.parametrize("locale,expected", [("nl", "€\u00a0250,00"), ("en", "€250.00"),
                                             ("de", "250,00\u00a0€")])
def test_total_given_is_the_readers_own_amount_in_their_locale(project, settings, locale, expected):
    variants, signing = prepared(project, settings, [locale])
    mail = message.build(variants[(locale, None)], donor(locale, total_given=250), "c1", signing)
    assert f"gift van {expected}, Marieke." in mail.html
    assert f"gift van {expected}, Marieke." in mail.text.replace("\n", " ")


def test_a_donor_without_the_field_gets_the_fallback(project, settings):
    variants, signing = prepared(project, settings, ["nl"])
    mail = message.build(variants[("nl", None)], Recipient(4, "x@example.org", None, "nl", "formal",
                                                           None, "donors"), "c1", signing)
    assert "gift van uw steun, lezer." in mail.html
    assert "__PB_FIELD" not in mail.html + mail.text


def test_values_are_html_escaped_in_html_and_raw_in_text(project, settings):
    variants, signing = prepared(project, settings, ["nl"])
    mail = message.build(variants[("nl", None)], donor("nl", total_given=1),
                         "c1", signing)
    reader = Recipient(5, "y@example.org", "<b>Jan</b> & co", "nl", "formal", None, "donors")
    mail = message.build(variants[("nl", None)], reader, "c1", signing)
    assert "&lt;b&gt;Jan&lt;/b&gt;" in mail.html and "<b>Jan</b>" not in mail.html
    assert "<b>Jan</b>" in mail.text


def test_the_variant_is_rendered_once_and_only_filled_per_recipient(project, settings):
    variants, signing = prepared(project, settings, ["nl"])
    variant = variants[("nl", None)]
    assert [p.field for _, p, _ in variant.fields] == ["total_given", "voornaam"]
    assert any(marker in variant.html.markers for marker, _, _ in variant.fields)


def test_a_field_that_is_not_whitelisted_is_refused_with_file_and_line(project, settings):
    path = write_newsletter(project, "Uw {totaal_gegeven} en {iban}.")
    with pytest.raises(ContentError) as caught:
        build_variants(path, ["nl"], [None], settings)
    problems = caught.value.problems
    assert [p.line for p in problems] == [23, 23]
    assert problems[0].file.endswith("persoonlijk.yaml")
    assert "{totaal_gegeven}" in problems[0].message and "did you mean {total_given}" in problems[0].message
    assert "{iban}" in problems[1].message and "segments.yaml" in problems[1].message


def test_a_field_in_the_subject_is_refused(project, settings):
    path = write_newsletter(project, "{voornaam}", where='subject: "Resultaten zomer 2018:')
    with pytest.raises(ContentError, match="cannot go in the subject"):
        build_variants(path, ["nl"], [None], settings)


def test_literal_text_keeps_its_braces(project, settings):
    text = (project / SAMPLE).read_text(encoding="utf-8").replace(
        "  - id: aangifte\n", "  - id: aangifte\n    literal: true\n")
    path = project / "newsletters" / "letterlijk.yaml"
    path.write_text(text.replace(BODY_LINE, BODY_LINE + " Schrijf {{ naam }} of {voornaam}."), "utf-8")
    result = build_variants(path, ["nl"], [None], settings)
    assert "Schrijf {{ naam }} of {voornaam}." in " ".join(result.variant("nl").text.split())


@pytest.mark.parametrize("kind,raw,locale,expected", [
    ("date", "2018-06-01", "nl", "1 juni 2018"),
    ("date", "2018-06-01", "en", "June 1, 2018"),
    ("number", 1250.5, "nl", "1.250,5"),
    ("text", "major", "nl", "major"),
])
def test_values_are_formatted_by_kind(kind, raw, locale, expected):
    spec = personal.FieldSpec("x", kind)
    reader = donor(locale, x=raw)
    assert personal.value(personal.Placeholder("x", "-"), spec, reader, locale) == expected


def test_a_value_of_the_wrong_kind_shows_the_fallback():
    spec = personal.FieldSpec("x", "date")
    assert personal.value(personal.Placeholder("x", "onbekend"), spec, donor("nl", x="gisteren"), "nl") == "onbekend"


def test_resolve_gives_each_donor_their_declared_fields(db, settings):
    from postbode import audience
    audience.import_samples_if_empty(db, settings)
    donors = {r.email: r for r in audience.resolve(db, ["donors"], settings)}
    pieter = donors["pieter.ijsselstein@example.org"]
    assert pieter.fields["total_given"] == 2500 and pieter.fields["last_gift"] == "2018-06-01"
    assert set(pieter.fields) <= {"organisation", "donor_tier", "last_gift", "total_given"}
    spec = personal.available(settings)["total_given"]
    assert personal.value(personal.Placeholder("total_given"), spec, pieter, "nl") == "€\u00a02.500,00"
