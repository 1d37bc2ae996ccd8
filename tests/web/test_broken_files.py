"""A broken newsletter file stays local: left out of the archive (logged once), reported by `check`."""
from __future__ import annotations

import logging

import pytest

from conftest import SAMPLE

NEWSLETTER = "2018-07-resultaten"


@pytest.fixture
def broken(project) -> dict[str, int]:
    """Two broken newsletters next to the sample, by id, with the line where each breaks."""
    source = (project / SAMPLE).read_text(encoding="utf-8")
    lines = source.splitlines()
    tagged = "\n".join(lines[:3] + ["intro: !custom tekst"] + lines[3:])
    (project / "newsletters" / "met-tag.yaml").write_text(tagged.replace(NEWSLETTER, "met-tag", 1),
                                                          encoding="utf-8")
    deep = source.replace(NEWSLETTER, "diep", 1) + "\nextra: " + "[" * 5000 + "]" * 5000 + "\n"
    (project / "newsletters" / "diep.yaml").write_text(deep, encoding="utf-8")
    return {"met-tag": 4, "diep": len(source.splitlines()) + 2}


def test_the_archive_stays_up_and_each_broken_file_is_logged_once(client, broken, caplog):
    """The fault: one file with !custom or 5,000 brackets took the whole public archive down (500)."""
    with caplog.at_level(logging.WARNING, logger="postbode.web"):
        for _ in range(3):
            index = client.get("/")
            assert index.status_code == 200
            assert f"/v/{NEWSLETTER}/nl" in index.get_data(as_text=True)
        assert client.get(f"/v/{NEWSLETTER}/nl").status_code == 200
        for newsletter_id in broken:
            assert client.get(f"/v/{newsletter_id}/nl").status_code == 404
    for name in ("met-tag.yaml", "diep.yaml"):
        logged = [r for r in caplog.records if name in r.getMessage()]
        assert len(logged) == 1, [r.getMessage() for r in caplog.records]
        assert "Traceback" not in caplog.text


def test_check_reports_file_and_line_without_a_traceback(invoke, broken):
    for newsletter_id, line in broken.items():
        result = invoke("check", f"newsletters/{newsletter_id}.yaml")
        assert result.exit_code == 1
        assert f"{newsletter_id}.yaml:{line}" in result.output, result.output
        assert "Traceback" not in result.output
