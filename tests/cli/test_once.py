"""Once per person per newsletter, through the CLI, against a real SMTP server counting per address."""
from __future__ import annotations

import re
from collections import Counter

from postbode import audience

from conftest import SAMPLE

NEWSLETTER = "2018-07-resultaten"


def flat(text: str) -> str:
    return " ".join(text.split())


def per_address(server) -> Counter[str]:
    """How many copies of the newsletter each address received (case ignored)."""
    return Counter(audience.address_key(to) for mail in server.received for to in mail.rcpt_tos)


def members(state_conn, send_settings, *segments: str) -> set[str]:
    conn = state_conn()
    return {audience.address_key(r.email)
            for r in audience.resolve(conn, list(segments), send_settings)}


def test_every_address_receives_the_newsletter_once_whatever_segments_a_send_names(
        invoke, send_settings, smtp_server, state_conn):
    def send(*args: str):
        result = invoke("send", SAMPLE, *args, "--yes", "--transport", smtp_server.url,
                        env=smtp_server.env)
        assert result.exit_code == 0, result.output
        return flat(result.output)

    send("--segment", "funders")
    funders = members(state_conn, send_settings, "funders")
    assert set(per_address(smtp_server)) == funders and len(funders) == 6

    second = send("--segment", "everyone")
    assert (f"already received this newsletter: 6 (campaign {NEWSLETTER}--funders); left out"
            in second)
    everyone = members(state_conn, send_settings, "everyone")
    assert set(per_address(smtp_server)) == everyone and len(everyone) > len(funders)
    assert set(per_address(smtp_server).values()) == {1}

    third = send("--segment", "donors", "--segment", "funders")
    assert "nothing to send: everyone in donors, funders already has this newsletter" in third
    assert "add --again" in third
    assert set(per_address(smtp_server).values()) == {1}, per_address(smtp_server)

    again = send("--segment", "donors", "--segment", "funders", "--again")
    both = members(state_conn, send_settings, "donors", "funders")
    assert f"--again: sending again to {len(both)} who already received this newsletter" in again
    counts = per_address(smtp_server)
    assert {a for a, n in counts.items() if n == 2} == both
    assert {a for a, n in counts.items() if n == 1} == everyone - both


def test_the_report_says_who_was_left_out_and_who_was_sent_again(invoke, send_settings):
    assert invoke("send", SAMPLE, "--segment", "funders", "--yes").exit_code == 0
    assert invoke("send", SAMPLE, "--segment", "everyone", "--yes").exit_code == 0
    assert invoke("send", SAMPLE, "--segment", "funders", "--yes", "--new-campaign",
                  "--again").exit_code == 0
    everyone = flat(invoke("report", f"{NEWSLETTER}--everyone").output)
    assert (f"left out, because they already had this newsletter: 6 (campaign "
            f"{NEWSLETTER}--funders)") in everyone
    again = flat(invoke("report", f"{NEWSLETTER}--funders--2").output)
    assert "sent again (--again) to 6 who already had this newsletter" in again


def test_a_changed_newsletter_says_who_had_the_earlier_version_and_needs_again(
        invoke, project, send_settings):
    assert invoke("send", SAMPLE, "--segment", "funders", "--yes").exit_code == 0
    source = project / SAMPLE
    source.write_text(source.read_text(encoding="utf-8").replace("2018", "2018 ", 1),
                      encoding="utf-8")
    changed = invoke("send", SAMPLE, "--segment", "funders", "--yes", "--new-campaign")
    out = flat(changed.output)
    assert changed.exit_code == 0, changed.output
    assert "6 of them received an earlier version" in out and "--again reaches them" in out
    assert "nothing to send" in out
    sent = invoke("send", SAMPLE, "--segment", "funders", "--yes", "--new-campaign", "--again")
    assert sent.exit_code == 0, sent.output
    assert re.search(r"total │ 6 │ 0 │ 0 │ 0 │ 0", flat(sent.output))


def test_dry_run_builds_only_for_those_who_do_not_have_it_yet(invoke, send_settings,
                                                             state_conn):
    assert invoke("send", SAMPLE, "--segment", "funders", "--yes").exit_code == 0
    result = invoke("send", SAMPLE, "--segment", "everyone", "--dry-run")
    built = re.search(r"dry run: built (\d+) messages", flat(result.output))
    everyone = members(state_conn, send_settings, "everyone")
    assert built and int(built.group(1)) == len(everyone) - 6
    again = invoke("send", SAMPLE, "--segment", "everyone", "--dry-run", "--again")
    assert f"dry run: built {len(everyone)} messages" in flat(again.output)
