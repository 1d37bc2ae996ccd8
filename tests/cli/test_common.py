"""Data printed to the terminal is shown, never obeyed: Rich markup and control characters literally."""
from __future__ import annotations

import csv
import io

from rich.console import Console

from postbode.cli.common import printable

OSC8 = "\x1b]8;;https://evil.example\x1b\\klik hier\x1b]8;;\x1b\\"
MARKUP = "[link=https://evil.example]klik[/link] [bold red]Lotte[/]"


def rendered(text: str) -> str:
    """What a real terminal would be sent."""
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=300,
                      highlight=False)
    console.print(text)
    return console.file.getvalue()


def test_markup_and_escape_sequences_are_shown_literally():
    out = rendered(printable(f"{MARKUP} {OSC8} \x07\x00 \u202eevil\nnext"))
    assert "\x1b]8" not in out and "\x07" not in out and "\x00" not in out and "\u202e" not in out
    assert MARKUP in out
    assert r"\x1b]8;;https://evil.example\x1b\klik hier" in out
    assert r"\u202eevil\nnext" in out
    assert rendered(printable("José العربية 🙂")).strip() == "José العربية 🙂"


def test_lines_keep_their_newlines_only():
    assert printable("a\nb\tc\x1b", lines=True) == "a\nb\\tc\\x1b"


def test_subscribers_list_shows_a_hostile_name_as_text(invoke, tmp_path):
    """The attack: a name with an OSC-8 link and Rich markup reaches the operator's terminal."""
    source = tmp_path / "hostile.csv"
    with source.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["email", "name", "language"],
                                  ["lotte@example.org", f"{MARKUP}{OSC8}", "nl"]])
    assert invoke("subscribers", "import", str(source), "--list", "subscribers").exit_code == 0
    result = invoke("subscribers", "list")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output  # no escape sequence reaches the terminal
    # the table folds the long name; its markup and escapes are there as text
    assert "[link=" in result.output and "[bold" in result.output and "\\x1b" in result.output
