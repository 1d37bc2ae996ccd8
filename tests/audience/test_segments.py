"""Segments: the sample segments resolve as documented; broken segment files fail with their line."""
from __future__ import annotations

import dataclasses
import importlib
import textwrap

import pytest

from postbode import audience
from postbode.audience.segments import SegmentsError, load_segments, parse_locale

# state tests: once on a SQLite file, once on PostgreSQL (tests/fixtures/state.py)
pytestmark = pytest.mark.both_engines


@pytest.fixture
def samples(db, settings):
    """The sample lists imported, as the README's main command does on a fresh database."""
    summaries = audience.import_samples_if_empty(db, settings)
    assert [s.list_name for s in summaries] == ["funders", "donors", "subscribers"]
    assert all(not s.invalid for s in summaries)
    return db


def recipients(conn, settings, *segments: str) -> dict[str, audience.Recipient]:
    return {r.email: r for r in audience.resolve(conn, list(segments), settings)}


def test_samples_are_imported_only_into_an_empty_database(samples, settings):
    assert audience.import_samples_if_empty(samples, settings) == []
    count = samples.exec_driver_sql("SELECT count(*) FROM subscribers").fetchone()[0]
    assert count == 25  # 6 funders + 10 donors + 11 subscribers, two people on two lists


def test_sample_emails_are_example_addresses_only(samples):
    domains = {row[0].rsplit("@", 1)[1] for row in samples.exec_driver_sql("SELECT email FROM subscribers")}
    assert domains == {"example.org"}


def test_funders_are_formal_with_the_funders_view(samples, settings):
    funders = recipients(samples, settings, "funders")
    assert len(funders) == 6
    assert {r.view for r in funders.values()} == {"funders"}
    assert {r.formality for r in funders.values()} == {"formal"}  # the segment says so
    assert funders["sophie.lambrecht@example.org"].locale == "nl_BE"
    assert funders["h.brandt@example.org"].locale == "de"
    assert "M.Dekker@example.org" in funders  # local part as given, domain lower-cased


def test_donors_keep_their_own_formality_and_locale(samples, settings):
    donors = recipients(samples, settings, "donors")
    assert len(donors) == 10
    assert {r.view for r in donors.values()} == {"donors"}
    assert donors["marieke.vandam@example.org"].formality == "informal"
    assert donors["thomas.becker@example.org"].formality == "formal"  # no aanhef: the default
    assert donors["yusuf.elamrani@example.org"].locale == "ar"
    assert donors["yusuf.elamrani@example.org"].name == "Yusuf el Amrani"
    assert donors["pieter.ijsselstein@example.org"].name == "Pieter Ĳsselstein"


def test_subscribers_get_the_public_view_and_the_default_locale(samples, settings):
    subs = recipients(samples, settings, "subscribers")
    assert len(subs) == 11
    assert {r.view for r in subs.values()} == {None}
    assert subs["daan.mulder@example.org"].locale == "nl"  # no language given
    assert subs["amira.saleh@example.org"].locale == "ar"


def test_everyone_is_every_subscribed_address_once(samples, settings):
    everyone = list(audience.resolve(samples, ["everyone"], settings))
    assert len(everyone) == 25 == len({r.email.lower() for r in everyone})
    assert {r.segment for r in everyone} == {"everyone"}
    assert {r.locale for r in everyone} == {"nl", "nl_BE", "en", "de", "ar"}


def test_first_requested_segment_wins_for_people_in_several(samples, settings):
    mixed = recipients(samples, settings, "funders", "donors", "everyone")
    assert len(mixed) == 25
    anouk = mixed["anouk.verbeek@example.org"]  # funder and donor
    assert (anouk.segment, anouk.view) == ("funders", "funders")
    marieke = mixed["marieke.vandam@example.org"]  # donor and subscriber
    assert (marieke.segment, marieke.view) == ("donors", "donors")
    assert mixed["fleur.smit@example.org"].segment == "everyone"
    reverse = recipients(samples, settings, "donors", "funders")
    assert reverse["anouk.verbeek@example.org"].segment == "donors"


def test_attribute_rules_exclusions_and_segment_references(samples, settings):
    major = recipients(samples, settings, "major_donors")
    # Els Koene is a major donor, but her last gift was in 2017.
    assert set(major) == {"pieter.ijsselstein@example.org", "noor.haddad@example.org", "emma.brouwer@example.org"}
    public = recipients(samples, settings, "public")
    assert len(public) == 10 and "marieke.vandam@example.org" not in public
    assert "fleur.smit@example.org" in public
    dutch = recipients(samples, settings, "dutch_speaking")
    assert "lieve.peeters@example.org" in dutch  # nl matches nl_BE
    assert "daan.mulder@example.org" in dutch  # no locale: the default, nl
    assert "redactie@example.org" not in dutch  # tagged press
    assert "sara.jansen@example.org" not in dutch


def test_suppression_and_consent_apply_to_resolution_and_counts(samples, settings):
    audience.unsubscribe(samples, "fleur.smit@example.org")
    audience.suppress(samples, "bram.devries@example.org", "bounced", "smtp 550 5.1.1")
    audience.forget(samples, "olivia.grant@example.org")
    samples.exec_driver_sql("UPDATE subscribers SET consent = 'unconfirmed' WHERE email = 'felix.schneider@example.org'")
    subs = recipients(samples, settings, "subscribers")
    assert len(subs) == 7
    plan = audience.plan_counts(samples, ["subscribers"], settings)
    assert plan.total == 7
    assert plan.left_out == {"bounced": 1, "unconfirmed": 1, "unsubscribed": 1}
    assert plan.recipients[("subscribers", "ar")] == 2


def test_plan_counts_per_segment_and_locale(samples, settings):
    plan = audience.plan_counts(samples, ["funders", "everyone"], settings)
    assert plan.recipients[("funders", "nl")] == 3
    assert plan.recipients[("funders", "nl_BE")] == 1
    assert plan.total == 25
    assert plan.left_out == {}


def test_locale_outside_the_configured_languages_falls_back_to_default(samples, settings):
    samples.exec_driver_sql("UPDATE subscribers SET locale = 'fr' WHERE email = 'fleur.smit@example.org'")
    assert recipients(samples, settings, "subscribers")["fleur.smit@example.org"].locale == "nl"
    other = dataclasses.replace(settings, default_locale="en")
    assert recipients(samples, other, "subscribers")["daan.mulder@example.org"].locale == "en"


def test_resolution_streams_in_batches(samples, settings, monkeypatch):
    monkeypatch.setattr(importlib.import_module("postbode.audience.resolve"), "BATCH_SIZE", 4)
    everyone = list(audience.resolve(samples, ["everyone"], settings))
    assert len(everyone) == 25 == len({r.subscriber_id for r in everyone})
    assert [r.subscriber_id for r in everyone] == sorted(r.subscriber_id for r in everyone)


def test_unknown_segment_requested(samples, settings):
    with pytest.raises(audience.AudienceError, match=r"unknown segment 'fundrs'.*defines"):
        list(audience.resolve(samples, ["fundrs"], settings))


@pytest.mark.parametrize("locale, expected", [
    ("nl-BE", "nl_BE"), ("nl_be", "nl_BE"), ("NL", "nl"), ("ar", "ar"), ("klingon", None), ("", None)])
def test_parse_locale(locale, expected):
    assert parse_locale(locale) == expected


# ---------------------------------------------------------------- broken segments files


def problems_of(settings, text: str, head: str = "") -> list[tuple[int | None, str]]:
    """Problems (line, message) of a segments file: `head` as is, then `text` dedented and indented."""
    body = textwrap.indent(textwrap.dedent(text), "  ") if head else text
    settings.segments_file.write_text(head + body, encoding="utf-8")
    with pytest.raises(SegmentsError) as err:
        load_segments(settings)
    assert str(settings.segments_file) in str(err.value)
    return [(p.line, p.message) for p in err.value.problems]


HEAD = """\
lists:
  donors: donors.csv
fields:
  last_gift: date
  donor_tier: text
segments:
"""


def test_unknown_list_segment_and_field_are_named_with_their_line(settings):
    found = problems_of(settings, head=HEAD, text="""\
      a:
        lists: [donors, fundrs]
      b:
        segments:
          - a
          - nobody
      c:
        lists: [donors]
        where:
          donor_tierr: major
    """)
    lines = {line: message for line, message in found}
    assert set(lines) == {8, 12, 16}
    assert "unknown list 'fundrs'" in lines[8]
    assert "unknown segment 'nobody'" in lines[12]
    assert "unknown field 'donor_tierr'" in lines[16]


def test_unknown_key_wrong_operator_bad_value_and_cycle(settings):
    found = problems_of(settings, head=HEAD, text="""\
      a:
        lists: [donors]
        formalty: formal
      b:
        lists: [donors]
        where: {donor_tier_after: 2018-01-01}
      c:
        lists: [donors]
        where: {last_gift_after: soon}
      d:
        segments: [e]
      e:
        segments: [d]
      f:
        description: nothing to select on
    """)
    messages = dict(found)
    assert "unknown key" in messages[9]
    assert "_after does not apply to a text field" in messages[12]
    assert "is not a date" in messages[15]
    assert "refers back to itself" in messages[19]
    assert "has no rule" in messages[20]


def test_invalid_yaml_and_duplicate_keys(settings):
    assert problems_of(settings, "segments:\n  a: [unclosed\n")[0][0] == 3
    found = problems_of(settings, head=HEAD, text="""\
      a:
        lists: [donors]
      a:
        lists: [donors]
    """)
    assert found[0][0] == 9 and "appears twice" in found[0][1]
