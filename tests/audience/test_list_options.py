"""segments.yaml list options: self_service, reason, consent text; errors name the line."""
from __future__ import annotations

import pytest

from postbode.audience.segments import (SegmentsError, load_lists, segment_lists,
                                        self_service_lists)


def test_the_sample_lists_say_who_may_join_and_why(settings):
    lists = load_lists(settings)
    assert list(self_service_lists(settings)) == ["subscribers"]
    assert lists["funders"].self_service is False
    assert lists["funders"].reason == "omdat uw fonds ons werk financiert"
    assert lists["subscribers"].consent.startswith("Ja, stuur mij de nieuwsbrief")
    assert lists["subscribers"].consent_version == "nieuwsbrief-2026-12"


def test_a_list_without_options_is_not_self_service(settings, tmp_path):
    path = tmp_path / "segments.yaml"
    path.write_text("lists:\n  press: {}\nsegments:\n  press: {lists: [press]}\n", encoding="utf-8")
    spec = load_lists(settings.with_overrides(segments_file=path))["press"]
    assert (spec.self_service, spec.reason, spec.consent_version) == (False, "", "")


def test_self_service_must_be_true_or_false(settings, tmp_path):
    path = tmp_path / "segments.yaml"
    path.write_text("lists:\n  press:\n    self_service: maybe\n    reason: [a]\n"
                    "segments:\n  press: {lists: [press]}\n", encoding="utf-8")
    with pytest.raises(SegmentsError) as caught:
        load_lists(settings.with_overrides(segments_file=path))
    text = str(caught.value.problems)
    assert "lists.press.self_service" in text and "true or false" in text
    assert [p.line for p in caught.value.problems] == [3, 4]


def test_a_consent_text_without_version_gets_one_from_its_words(settings, tmp_path):
    path = tmp_path / "segments.yaml"
    path.write_text("lists:\n  press:\n    consent: Ja graag\nsegments:\n  press: {lists: [press]}\n",
                    encoding="utf-8")
    first = load_lists(settings.with_overrides(segments_file=path))["press"].consent_version
    path.write_text(path.read_text(encoding="utf-8").replace("Ja graag", "Ja, graag"), encoding="utf-8")
    second = load_lists(settings.with_overrides(segments_file=path))["press"].consent_version
    assert len(first) == 12 and first != second


def test_each_segment_knows_the_lists_that_put_people_in_it(settings):
    found = segment_lists(settings)
    assert found["funders"] == ("funders",)
    assert found["major_donors"] == ("donors",)
    assert found["everyone"] == () and found["public"] == ()  # every list: the general reason
