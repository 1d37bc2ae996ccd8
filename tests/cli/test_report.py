"""`report`: the transports a campaign went through, times with their offset, counts by segment."""
from __future__ import annotations

import csv
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from postbode.cli.send import _number, _when

from conftest import SAMPLE

CAMPAIGN = "2018-07-resultaten--donors+funders"


def flat(text: str) -> str:
    return " ".join(text.split())


def offset_now(zone: str) -> str:
    """The zone's UTC offset now, as the report writes it (+01:00)."""
    raw = datetime.now(ZoneInfo(zone)).strftime("%z")
    return f"{raw[:3]}:{raw[3:]}"


def set_setting(project, old: str, new: str) -> None:
    toml = project / "postbode.toml"
    text = toml.read_text(encoding="utf-8")
    assert old in text
    toml.write_text(text.replace(old, new), encoding="utf-8")


def test_a_send_resumed_on_another_server_shows_both_transports(invoke, project, send_settings,
                                                                smtp_server):
    set_setting(project, "hourly_quota = 0", "hourly_quota = 7")
    paused = invoke("send", SAMPLE, "--segment", "donors", "--segment", "funders", "--yes",
                    "--concurrency", "1")
    assert paused.exit_code == 3, paused.output
    set_setting(project, "hourly_quota = 7", "hourly_quota = 0")
    resumed = invoke("send", SAMPLE, "--segment", "donors", "--segment", "funders", "--yes",
                     "--transport", smtp_server.url, env=smtp_server.env)
    assert resumed.exit_code == 0, resumed.output
    out = flat(invoke("report", CAMPAIGN).output)
    through = re.findall(r"(outbox://outbox|smtp://127\.0\.0\.1:\d+) \S+ \S+ [+-]\d\d:\d\d → "
                         r"\S+ \S+ [+-]\d\d:\d\d: (\d+) sent", out)
    assert through == [("outbox://outbox", "7"),
                       (f"smtp://127.0.0.1:{smtp_server.port}", str(len(smtp_server.received)))]
    assert smtp_server.user not in out and "cafile" not in out  # no login, no options


def test_times_are_in_the_configured_zone_with_its_offset(invoke, project, send_settings,
                                                          tmp_path):
    assert invoke("send", SAMPLE, "--segment", "donors", "--segment", "funders",
                  "--yes").exit_code == 0
    amsterdam = flat(invoke("report", CAMPAIGN).output)
    assert "(times in Europe/Amsterdam)" in amsterdam
    assert re.search(rf"created \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d {re.escape(offset_now('Europe/Amsterdam'))}",
                     amsterdam)
    set_setting(project, 'timezone = "Europe/Amsterdam"', 'timezone = "America/New_York"')
    new_york = flat(invoke("report", CAMPAIGN, "--csv", str(tmp_path / "r.csv")).output)
    assert "(times in America/New_York)" in new_york
    assert f" {offset_now('America/New_York')}" in new_york
    rows = list(csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8")))
    assert rows and all(datetime.fromisoformat(r["time"]).utcoffset() ==
                        datetime.now(ZoneInfo("America/New_York")).utcoffset() for r in rows)


def test_counts_by_segment_as_well_as_by_locale(invoke, project, send_settings, tmp_path):
    assert invoke("send", SAMPLE, "--segment", "donors", "--segment", "funders",
                  "--yes").exit_code == 0
    out = flat(invoke("report", CAMPAIGN, "--csv", str(tmp_path / "r.csv")).output)
    rows = list(csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8")))
    donors = sum(r["segment"] == "donors" for r in rows)
    funders = sum(r["segment"] == "funders" for r in rows)
    # Anouk is on both lists: she is counted once, in the first segment named
    assert donors == 10 and funders == 5
    assert "recipients by state and locale" in out and "recipients by state and segment" in out
    assert re.search(rf"│ donors │ 0 │ 0 │ {donors} │", out)
    assert re.search(rf"│ funders │ 0 │ 0 │ {funders} │", out)


def test_counts_are_written_the_source_locales_way(send_settings):
    assert _number(send_settings, 1234567) == "1.234.567"          # nl
    english = send_settings.with_overrides(source_locale="en")
    assert _number(english, 1234567) == "1,234,567"
    winter = datetime(2026, 1, 15, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    summer = datetime(2026, 7, 15, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert _when(winter, "Europe/Amsterdam") == "2026-01-15 13:00:00 +01:00"
    assert _when(summer, "Europe/Amsterdam") == "2026-07-15 14:00:00 +02:00"
