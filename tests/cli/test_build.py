"""The `build` and `check` commands: files, table, clean errors, nothing half-written."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = "newsletters/2018-07-resultaten.yaml"
BROKEN = "tests/data/broken/image-without-alt.yaml"


def out_files(project: Path) -> list[Path]:
    build_dir = project / "build"
    return sorted(p for p in build_dir.rglob("*") if p.is_file()) if build_dir.exists() else []


def require_french(project: Path) -> None:
    """A project where the French variant must be complete and has no translation at all."""
    config = project / "postbode.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace('locales = ["nl", "en", "de", "ar"]', 'locales = ["nl", "en", "de", "ar", "fr"]')
    text = text.replace("[i18n.completeness]\n", '[i18n.completeness]\nfr = "require"\n')
    config.write_text(text, encoding="utf-8")


def run_script(project: Path, repo_root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(repo_root / "send.py"),
                           "--config", str(project / "postbode.toml"), *args],
                          cwd=project, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(project)})


def test_build_writes_files_and_prints_the_table(invoke, project: Path) -> None:
    result = invoke("build", SAMPLE, "--locale", "nl", "--segment", "donors")
    assert result.exit_code == 0, result.output
    names = [p.name for p in out_files(project)]
    assert names == ["toerisme-training.png", "nl--donors.eml", "nl--donors.html", "nl--donors.txt",
                     "nl.eml", "nl.html", "nl.txt"]
    for heading in ("locale", "view", "subject", "HTML KB", "text KB", "fallbacks"):
        assert heading in result.stdout
    assert "donors" in result.stdout and "public" in result.stdout
    assert "development key" in result.stderr
    assert "wrote 7 files" in result.stdout


def test_build_to_another_folder_with_a_real_key(invoke, project: Path, tmp_path: Path) -> None:
    result = invoke("build", SAMPLE, "-l", "nl", "--out", str(tmp_path / "preview"),
                    env={"POSTBODE_SECRET_KEY": "a-test-key-that-is-long-enough-123"})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "preview" / "2018-07-resultaten" / "nl.eml").is_file()
    assert out_files(project) == []
    assert "development key" not in result.stderr


def test_build_of_a_broken_file_writes_nothing(invoke, project: Path, repo_root: Path) -> None:
    result = invoke("build", str(repo_root / BROKEN), "-l", "nl")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "image-without-alt.yaml:14:7: sections[1].image.alt" in result.stderr
    assert out_files(project) == []


def test_one_broken_variant_means_no_files_at_all(invoke, project: Path) -> None:
    require_french(project)
    result = invoke("build", SAMPLE, "-l", "nl", "-l", "fr")
    assert result.exit_code == 1
    assert "locale fr must be complete" in result.stderr
    assert out_files(project) == []


def test_unknown_segment_is_refused_when_segments_are_defined(invoke, project: Path) -> None:
    segments = project / "subscribers" / "segments.yaml"
    segments.parent.mkdir(parents=True, exist_ok=True)
    segments.write_text("lists:\n  donors: {description: Donateurs}\n"
                        "segments:\n  donors: {lists: [donors]}\n", encoding="utf-8")
    result = invoke("build", SAMPLE, "-l", "nl", "--segment", "nobody")
    assert result.exit_code == 1
    assert "unknown segment 'nobody'" in result.stderr
    assert out_files(project) == []


def test_check_passes_on_the_sample_and_writes_nothing(invoke, project: Path) -> None:
    result = invoke("check", SAMPLE, "-l", "nl", "-l", "de", "-s", "donors")
    assert result.exit_code == 0, result.output
    assert "ok: 2018-07-resultaten: 4 variants" in result.stdout
    assert "de: " in result.stderr and "fall back" in result.stderr
    assert out_files(project) == []


def test_check_lists_problems_with_file_and_line(invoke, repo_root: Path) -> None:
    result = invoke("check", str(repo_root / "tests/data/broken/many-problems.yaml"))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "many-problems.yaml:" in result.stderr


def test_check_refuses_a_subject_that_would_inject_headers(invoke, project: Path) -> None:
    newsletter = project / SAMPLE
    text = newsletter.read_text(encoding="utf-8")
    subject_line = next(line for line in text.splitlines() if line.startswith("subject:"))
    newsletter.write_text(text.replace(subject_line, 'subject: "Nieuws\\r\\nBcc: x@example.org"'),
                          encoding="utf-8")
    result = invoke("check", SAMPLE, "-l", "nl")
    assert result.exit_code == 1
    assert "Subject" in result.stderr or "subject" in result.stderr


def test_gmail_clipping_is_warned_about(invoke, project: Path) -> None:
    template = project / "templates" / "email.html"
    filler = '<div style="display:none">' + "opvulling " * 12000 + "</div>\n"
    template.write_text(template.read_text(encoding="utf-8").replace("</body>", filler + "</body>"),
                        encoding="utf-8")
    result = invoke("build", SAMPLE, "-l", "nl")
    assert result.exit_code == 0, result.output
    assert "Gmail clips" in result.stderr


@pytest.mark.parametrize("command", ["build", "check"])
def test_help_has_a_summary_and_an_example(invoke, command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    assert f"python send.py {command} newsletters/2018-07-resultaten.yaml" in result.stdout
    assert "--locale" in result.stdout and "--segment" in result.stdout


def test_errors_have_no_traceback_unless_debug(project: Path, repo_root: Path) -> None:
    plain = run_script(project, repo_root, "build", str(repo_root / BROKEN), "-l", "nl")
    assert plain.returncode == 1
    assert "Traceback" not in plain.stderr
    assert "image-without-alt.yaml:14:7" in plain.stderr
    debug = run_script(project, repo_root, "--debug", "build", str(repo_root / BROKEN), "-l", "nl")
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "ContentError" in debug.stderr
    assert out_files(project) == []


def fresh_newsletter(project: Path) -> str:
    """A new issue: the sample under another id, so no language has a catalog for it yet."""
    text = (project / SAMPLE).read_text(encoding="utf-8").replace("id: 2018-07-resultaten", "id: 2019-01-nieuw")
    (project / "newsletters" / "2019-01-nieuw.yaml").write_text(text, encoding="utf-8")
    return "newsletters/2019-01-nieuw.yaml"


def test_check_of_a_fresh_newsletter_gives_one_extract_and_update_hint(invoke, project: Path) -> None:
    result = invoke("check", fresh_newsletter(project))
    flat = " ".join(result.stderr.split())
    assert "no translations yet for en, de, ar — run `python send.py i18n extract` then `i18n update`" in flat
    assert "no translation yet" not in flat          # not one line per entry
    assert "sending is blocked until en is translated" in flat
    assert result.exit_code == 1
    assert "9 variants render cleanly" in " ".join(result.stdout.split())   # nl, de, ar × 3 views


def test_check_covers_every_segment_view_without_options(invoke, project: Path) -> None:
    result = invoke("check", SAMPLE, "-l", "nl")
    assert result.exit_code == 0, result.output
    assert "(nl, nl--funders, nl--donors)" in " ".join(result.stdout.split())
    narrowed = invoke("check", SAMPLE, "-l", "nl", "--segment", "donors")
    assert "(nl, nl--donors)" in " ".join(narrowed.stdout.split())


def test_check_names_the_personal_fields_used(invoke, project: Path) -> None:
    newsletter = project / SAMPLE
    text = newsletter.read_text(encoding="utf-8")
    newsletter.write_text(text.replace("  in gang hebben gezet.", "  in gang hebben gezet, {voornaam|lezer}."),
                          encoding="utf-8")
    result = invoke("check", SAMPLE, "-l", "nl", "-l", "de")
    assert result.exit_code == 0, result.output
    assert "personal fields: {voornaam}" in result.stdout
