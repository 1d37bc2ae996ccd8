"""The plan: recipients per segment and locale, and whether there is anything to send."""
from __future__ import annotations

from pathlib import Path

from postbode import campaign, journal
from postbode.campaign.fingerprint import Fingerprint, fingerprint
from postbode.campaign.planning import Plan, PlanLine

from conftest import SAMPLE


def a_plan(**kw) -> Plan:
    return Plan("x", Path("x.yaml"), ("everyone",), "outbox://outbox", "x--everyone", **kw)


def test_an_empty_segment_has_nothing_to_send():
    assert a_plan().nothing_to_do().startswith("nothing to send: no subscribed recipients in "
                                               "everyone")
    assert a_plan(lines=[PlanLine("everyone", "nl", 3)]).nothing_to_do() is None


def test_a_finished_campaign_sends_nothing_unless_unknown_rows_are_resent():
    finished = a_plan(lines=[PlanLine("everyone", "nl", 3)], resume=journal.Tally(),
                      finished=True)
    assert "x--everyone is finished; nothing left to send" in finished.nothing_to_do()
    assert "--new-campaign --again" in finished.nothing_to_do()
    assert finished.nothing_to_do(resend_unknown=True) is None


def test_the_plan_counts_and_names_the_campaign_it_would_start(send_settings, populate):
    populate(20)
    p = campaign.plan(send_settings, Path(SAMPLE), ["everyone"], transport="outbox://outbox")
    assert p.total == 20 and p.resume is None and not p.finished
    assert p.campaign_id == "2018-07-resultaten--everyone"
    campaign.run(send_settings, Path(SAMPLE), ["everyone"], transport="outbox://outbox")
    again = campaign.plan(send_settings, Path(SAMPLE), ["everyone"], transport="outbox://outbox")
    assert again.finished and again.resume["sent"] == 20
    new = campaign.plan(send_settings, Path(SAMPLE), ["everyone"], transport="outbox://outbox",
                        new_campaign=True)
    assert new.campaign_id == "2018-07-resultaten--everyone--2"


def test_the_fingerprint_names_what_changed(send_settings):
    before = fingerprint(send_settings, send_settings.root / SAMPLE, "2018-07-resultaten")
    assert SAMPLE in before.files and any(n.startswith("templates/") for n in before.files)
    changed = Fingerprint({**before.files, SAMPLE: "0" * 64, "templates/new.html": "1" * 64})
    assert changed.changed_since(before.files) == [SAMPLE, "templates/new.html"]
    assert changed.digest != before.digest
    assert before.changed_since(before.files) == []
