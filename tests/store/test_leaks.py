"""The shared guard: a connection a test leaves open is reported, one it closes is not."""
from __future__ import annotations

from pathlib import Path

import pytest

from postbode import store

pytest_plugins = ["pytester"]


def test_a_connection_left_open_fails_the_test(pytester: pytest.Pytester):
    pytester.makeconftest(f"pytest_plugins = ['fixtures.state']\nimport sys\n"
                          f"sys.path.insert(0, {str(Path(__file__).parents[1])!r})\n")
    pytester.makepyfile(
        "from postbode import store\n"
        "KEPT = []\n"
        "def test_leaks(tmp_path):\n"
        "    KEPT.append(store.connect(tmp_path / 'db.sqlite3'))\n"
        "def test_closes(tmp_path):\n"
        "    store.connect(tmp_path / 'db.sqlite3').close()\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*1 state database connection(s) left open*"])


def test_closing_returns_the_connection(tmp_path: Path):
    conn = store.connect(tmp_path / "db.sqlite3")
    conn.close()
    assert conn.closed
