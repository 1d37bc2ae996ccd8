"""postbode.counting: the tally both count paths share, and the kept SQL of the last count."""
from __future__ import annotations

import dataclasses
import json

import pytest

from postbode import audience, counting

from fixtures.state import read_rows

RULES = counting.TallyRules(("funders", "everyone"), "subscribed", ("en", "nl"), "nl")


def test_tally_sorts_rows_into_recipients_and_the_left_out():
    rows = [(0, "nl", "subscribed", 0, 3), (0, "fr", "subscribed", 0, 2), (1, "en_GB", "subscribed", 0, 1),
            (1, "nl", "subscribed", 1, 4), (1, None, "unconfirmed", 0, 5), (1, "nl", "bounced", 1, 6)]
    counts = counting.tally(rows, RULES)
    # French is not sent in: those two read the default locale
    assert counts.recipients == {("everyone", "en_GB"): 1, ("funders", "nl"): 5}
    assert counts.left_out == {"bounced": 6, "suppressed": 4, "unconfirmed": 5}
    assert counts.total == 6


def test_tally_counts_marked_recipients_apart():
    rows = [(0, "nl", "subscribed", 0, None, 3), (0, "nl", "subscribed", 0, "had it", 2)]
    assert counting.tally(rows, RULES, marks=True).recipients == {("funders", "nl"): 3}
    both = counting.tally(rows, RULES, marks=True, leave_out_marked=False)
    assert both.recipients == {("funders", "nl"): 5} and both.marked == {"had it": 2}


@pytest.fixture
def members(db, settings, project):
    for name, file in (("funders", "funders.csv"), ("subscribers", "newsletter.csv"), ("donors", "donors.csv")):
        audience.import_csv(db, project / "subscribers" / file, name, settings)
    audience.unsubscribe(db, "fleur.smit@example.org", source="test")
    return db


def test_the_kept_sql_gives_the_full_count(members, settings):
    segments = ["funders", "donors", "everyone"]
    assert counting.recall(settings, segments) is None              # nothing kept yet
    full = audience.plan_counts(members, segments, settings, keep=True)
    assert full.left_out and full.total > 10
    assert counting.recall(settings, segments) == full
    assert counting.recall(settings, ["everyone"]) is None          # kept per segments asked


def test_the_kept_sql_is_not_used_on_another_schema_revision(members, settings, db):
    audience.plan_counts(members, ["everyone"], settings, keep=True)
    [(revision,)] = [tuple(r.values()) for r in read_rows(settings, "SELECT version_num FROM alembic_version")]
    db.exec_driver_sql("UPDATE alembic_version SET version_num = 'another'")
    try:
        assert counting.recall(settings, ["everyone"]) is None
    finally:
        db.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{revision}'")
    assert counting.recall(settings, ["everyone"]) is not None


def test_other_settings_make_another_key(members, settings):
    audience.plan_counts(members, ["everyone"], settings, keep=True)
    english_default = dataclasses.replace(settings, default_locale="en")
    assert counting.recall(english_default, ["everyone"]) is None


def test_a_value_json_cannot_hold_is_not_kept(db, settings, project):
    cache = project / "state" / counting.CACHE_FILE
    counting.keep(settings, ["everyone"], "0009", "SELECT ?", [b"bytes"], RULES)
    assert not cache.exists() or json.loads(cache.read_text(encoding="utf-8")) == {}


def test_entries_beyond_the_kept_number_are_dropped(db, settings, project):
    for i in range(counting.KEPT + 3):
        counting.keep(settings, [f"segment-{i}"], "0009", "SELECT 1", [], RULES)
    kept = json.loads((project / "state" / counting.CACHE_FILE).read_text(encoding="utf-8"))
    assert len(kept) == counting.KEPT


@pytest.mark.both_engines
def test_postgresql_keeps_nothing(members, settings, project, database_engine):
    full = audience.plan_counts(members, ["everyone"], settings, keep=True)
    assert full.total > 0
    kept = (project / "state" / counting.CACHE_FILE).exists()
    assert kept == (database_engine == "sqlite")
