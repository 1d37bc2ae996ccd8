"""Resolution: recipients carry their declared fields; segment references are shared sub-queries."""
from __future__ import annotations

from pathlib import Path

import pytest

from postbode import audience
from postbode.audience.segments import MAX_REFERENCE_DEPTH, SegmentsError, load_segments

from fixtures.state import executed

# state tests: once on a SQLite file, once on PostgreSQL (tests/fixtures/state.py)
pytestmark = pytest.mark.both_engines


@pytest.fixture
def samples(db, settings):
    audience.import_samples_if_empty(db, settings)
    return db


def test_recipients_carry_the_attribute_fields_segments_yaml_declares(samples, settings):
    donors = {r.email: r for r in audience.resolve(samples, ["donors"], settings)}
    pieter = donors["pieter.ijsselstein@example.org"]
    assert pieter.fields == {"donor_tier": "major", "last_gift": "2018-06-01", "total_given": 2500}
    funders = {r.email: r for r in audience.resolve(samples, ["funders"], settings)}
    assert funders["anouk.verbeek@example.org"].fields["organisation"] == "Stichting Voorbeeldfonds"
    # fields take no part in equality: a recipient is the same recipient whatever they hold
    assert pieter == audience.Recipient(pieter.subscriber_id, pieter.email, pieter.name, pieter.locale,
                                        pieter.formality, pieter.view, pieter.segment)


def statements_of(conn, run) -> list[str]:
    return [statement for statement, _parameters, _many in executed(conn, run)]


def test_a_segment_named_twice_is_one_shared_sub_query(samples, settings):
    # public and dutch_speaking both name `everyone`; funders and donors are named by public
    sql = statements_of(samples, lambda: list(audience.resolve(samples, ["public", "dutch_speaking"],
                                                               settings)))[-1]
    flat = " ".join(sql.split())
    assert flat.startswith("WITH ")
    assert flat.count("segment_0 AS (") == 1
    assert flat.count("FROM segment_0") == 2


def write_chain(settings, length: int, top_down: bool = False) -> None:
    """Segment s0 is the list `subscribers`; each s<i> names s<i-1>, one level deeper."""
    rules = [["  s0:", "    lists: [subscribers]"]]
    rules += [[f"  s{i}:", f"    segments: [s{i - 1}]"] for i in range(1, length + 1)]
    lines = ["lists:", "  subscribers: newsletter.csv", "segments:"]
    for rule in reversed(rules) if top_down else rules:
        lines += rule
    Path(settings.segments_file).write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_long_chain_of_references_resolves_once_per_level(samples, settings):
    write_chain(settings, 24)
    resolved = list(audience.resolve(samples, ["s24"], settings))
    assert len(resolved) == len(list(audience.resolve(samples, ["s0"], settings))) == 11


@pytest.mark.parametrize("top_down", [False, True], ids=["bottom-up", "top-down"])
def test_references_nested_deeper_than_the_limit_are_refused_with_their_line(settings, top_down):
    write_chain(settings, MAX_REFERENCE_DEPTH + 1, top_down)
    with pytest.raises(SegmentsError, match=f"nest deeper than {MAX_REFERENCE_DEPTH}") as err:
        load_segments(settings)
    assert err.value.problems[0].line is not None
