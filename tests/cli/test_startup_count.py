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
