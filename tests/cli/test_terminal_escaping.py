"""Names from data reach the operator's terminal literally: no Rich markup, no escape sequences."""
from __future__ import annotations

from postbode.cli.common import printable

from fixtures.state import connect

HOSTILE = "[link=https://evil.example.org]Klik[/link] \x1b]8;;https://evil.example.org\x1b\\Jan\x1b[31m"


def test_printable_shows_markup_and_control_characters_literally():
    shown = printable(HOSTILE)
    assert "\x1b" not in shown
    assert "\\x1b]8;;" in shown and "\\x1b[31m" in shown
    assert shown.startswith("\\[link=https://evil.example.org]Klik\\[/link]")


def test_subscribers_list_prints_a_hostile_name_as_text(invoke, settings):
    assert invoke("subscribers", "import", "subscribers/newsletter.csv", "--list",
                  "subscribers").exit_code == 0
    conn = connect(settings.database)
    # a name stored before imports refused control characters
    address = conn.exec_driver_sql("SELECT email FROM subscribers ORDER BY id LIMIT 1").scalar()
    conn.exec_driver_sql("UPDATE subscribers SET name = ? WHERE email = ?", (HOSTILE, address))
    for args in (("subscribers", "list"), ("subscribers", "list", "--segment", "everyone")):
        result = invoke(*args, env={"COLUMNS": "400"})
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output
        # the cell may wrap, so look for pieces shorter than its width
        assert "[link=" in result.output and "[/link]" in result.output, result.output
        assert result.output.count("\\x1b") == 3
