"""Start-up of the commands that only read: `subscribers list --count` loads no heavy library."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

# alembic too: on a database at the newest revision it is not needed
HEAVY = ("email_validator", "pydantic", "premailer", "flask", "lxml", "cssutils", "requests", "alembic")

PROBE = """
import json, sys
from postbode.cli import main
sys.argv = ["postbode", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as done:
    code = done.code
print(json.dumps({"modules": sorted(sys.modules), "code": code}), file=sys.stderr)
"""


@pytest.fixture
def imported(invoke):
    for name, file in (("funders", "funders.csv"), ("subscribers", "newsletter.csv")):
        result = invoke("subscribers", "import", f"subscribers/{file}", "--list", name)
        assert result.exit_code == 0, result.output
    return invoke


def test_counting_a_segment_loads_no_heavy_library_and_counts_right(imported, project):
    env = {**os.environ, "COLUMNS": "120", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(
        ["--config", str(project / "postbode.toml"), "subscribers", "list", "--segment", "everyone",
         "--count"])], cwd=project, env=env, capture_output=True, text=True, timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stdout + done.stderr
    loaded = sorted(m for m in report["modules"] if m.split(".")[0] in HEAVY)
    assert loaded == [], f"the count path imported {loaded}"
    # on a SQLite file, SQLAlchemy's PostgreSQL dialect stays unloaded too
    assert "sqlalchemy.dialects.postgresql" not in report["modules"]
    total = next(line for line in done.stdout.splitlines() if "total" in line)
    counted = imported("subscribers", "list", "--segment", "everyone", "--count")
    assert counted.exit_code == 0
    assert total.split()[-2:] == next(line for line in counted.output.splitlines()
                                      if "total" in line).split()[-2:]
    assert int(total.split()[-2]) > 0


def _count_in_own_process(project, *segments: str) -> tuple[str, list[str]]:
    """(output, modules loaded) of `subscribers list --segment … --count` in a fresh interpreter."""
    env = {**os.environ, "COLUMNS": "120", "PYTHONPATH": str(REPO)}
    arguments = ["--config", str(project / "postbode.toml"), "subscribers", "list",
                 *[part for name in segments for part in ("--segment", name)], "--count"]
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(arguments)], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), done.stdout + done.stderr
    return done.stdout, report["modules"]


def _rows(output: str) -> list[list[str]]:
    return [line.strip("│ ").split() for line in output.splitlines() if line.startswith("│")]


def test_a_second_count_runs_the_kept_sql_without_sqlalchemy(imported, project):
    first, loaded_first = _count_in_own_process(project, "funders", "everyone")
    assert "sqlalchemy" in loaded_first                  # counted in full, the SQL kept
    again, loaded = _count_in_own_process(project, "funders", "everyone")
    assert "sqlalchemy" not in loaded and "postbode.audience" not in loaded
    assert _rows(again) == _rows(first) and len(_rows(first)) > 2


def test_the_kept_sql_counts_the_data_as_it_is_now(imported, project):
    _count_in_own_process(project, "everyone")
    assert imported("subscribers", "unsubscribe", "fleur.smit@example.org").exit_code == 0
    assert imported("subscribers", "import", "subscribers/donors.csv", "--list", "donors").exit_code == 0
    output, loaded = _count_in_own_process(project, "everyone")
    assert "sqlalchemy" not in loaded
    counted = imported("subscribers", "list", "--segment", "everyone", "--count")
    assert _rows(output) == _rows(counted.output)
    assert "left out, unsubscribed: 1" in output


def test_a_changed_segments_file_counts_in_full_again(imported, project):
    _count_in_own_process(project, "funders")
    segments = project / "subscribers" / "segments.yaml"
    segments.write_text(segments.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    output, loaded = _count_in_own_process(project, "funders")
    assert "sqlalchemy" in loaded
    assert _rows(output) == _rows(imported("subscribers", "list", "--segment", "funders", "--count").output)


def test_a_damaged_kept_file_is_counted_past(imported, project):
    _count_in_own_process(project, "everyone")
    (project / "state" / "count-cache.json").write_text("{not json", encoding="utf-8")
    output, loaded = _count_in_own_process(project, "everyone")
    assert "sqlalchemy" in loaded
    assert _rows(output) == _rows(imported("subscribers", "list", "--segment", "everyone", "--count").output)
