"""build_variants collects every problem; write_build writes all files or none."""
from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from postbode import build, tokens
from postbode.config import Settings
from postbode.errors import AudienceError, ContentError, InputError, PostbodeError

SAMPLE = "newsletters/2018-07-resultaten.yaml"


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_every_variant_is_rendered_and_inlined(settings: Settings, project: Path) -> None:
    result = build.build_variants(project / SAMPLE, ["nl", "de"], [None, "donors"], settings)
    assert set(result.variants) == {("nl", None), ("nl", "donors"), ("de", None), ("de", "donors")}
    assert result.newsletter.id == "2018-07-resultaten"
    for (locale, view), rendered in result.variants.items():
        assert (rendered.locale, rendered.view) == (locale, view)
        assert "style=" in rendered.html and "__PB_UNSUBSCRIBE_URL__" in rendered.html
    assert set(result.fallbacks) == {"nl", "de"}
    assert result.fallbacks["nl"] == ()


def test_default_locales_come_from_settings(settings: Settings, project: Path) -> None:
    fallback_only = settings.with_overrides(locales=("nl", "de"), completeness={})
    result = build.build_variants(project / SAMPLE, [], [], fallback_only)
    assert set(result.variants) == {("nl", None), ("de", None)}


def test_problems_of_all_variants_are_collected(settings: Settings, project: Path) -> None:
    strict = settings.with_overrides(completeness={"fr": "require", "es": "require"},
                                     locales=("nl", "fr", "es"))
    with pytest.raises(InputError) as caught:
        build.build_variants(project / SAMPLE, ["nl", "fr", "es"], [None], strict)
    text = str(caught.value)
    assert "locales/fr/LC_MESSAGES/2018-07-resultaten.po" in text
    assert "locales/es/LC_MESSAGES/2018-07-resultaten.po" in text
    assert text.startswith("problems in 2 variants")


def test_a_template_error_is_reported_once_for_all_variants(settings: Settings, project: Path) -> None:
    template = project / "templates" / "email.html"
    template.write_text(template.read_text(encoding="utf-8") + "{{ no_such_value }}\n", encoding="utf-8")
    with pytest.raises(PostbodeError) as caught:
        build.build_variants(project / SAMPLE, ["nl", "de"], [None], settings)
    text = str(caught.value)
    assert "no_such_value" in text
    assert "nl" in text and "de" in text


def test_broken_newsletter_raises_its_content_error(settings: Settings, project: Path,
                                                    repo_root: Path) -> None:
    with pytest.raises(ContentError, match=r"image-without-alt.yaml:\d+:\d+: .*alt"):
        build.build_variants(repo_root / "tests/data/broken/image-without-alt.yaml", ["nl"], [None],
                             settings)


def test_write_build_writes_html_text_and_a_parseable_sample_eml(settings: Settings, project: Path,
                                                                 tmp_path: Path) -> None:
    result = build.build_variants(project / SAMPLE, ["nl"], [None, "donors"], settings)
    signing, development = tokens.with_development_key(settings)
    assert development
    built = build.write_build(result, tmp_path / "out", signing)
    folder = tmp_path / "out" / "2018-07-resultaten"
    assert [p.relative_to(folder).as_posix() for p in files_under(folder)] == [
        "images/toerisme-training.png",
        "nl--donors.eml", "nl--donors.html", "nl--donors.txt", "nl.eml", "nl.html", "nl.txt"]
    assert {b.key for b in built} == {("nl", None), ("nl", "donors")}
    parsed = email.message_from_bytes((folder / "nl.eml").read_bytes(), policy=email.policy.default)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["To"].addresses[0].addr_spec == build.SAMPLE_EMAIL
    assert parsed["List-Unsubscribe"] and parsed["List-Unsubscribe-Post"]
    html = (folder / "nl.html").read_text(encoding="utf-8")
    assert "Voorbeeld Lezer" in html and "__PB_" not in html
    assert "Voorbeeld Lezer" in (folder / "nl.txt").read_text(encoding="utf-8")
    assert not list(folder.glob(".*.tmp"))


def test_write_build_writes_nothing_when_it_cannot_write(settings: Settings, project: Path,
                                                         tmp_path: Path) -> None:
    result = build.build_variants(project / SAMPLE, ["nl"], [None], settings)
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should be", encoding="utf-8")
    with pytest.raises(PostbodeError, match="could not write"):
        build.write_build(result, blocker, tokens.with_development_key(settings)[0])
    assert blocker.read_text(encoding="utf-8").startswith("a file")


def test_write_build_needs_a_signing_key(settings: Settings, project: Path, tmp_path: Path) -> None:
    result = build.build_variants(project / SAMPLE, ["nl"], [None], settings)
    with pytest.raises(PostbodeError, match="POSTBODE_SECRET_KEY"):
        build.write_build(result, tmp_path / "out", settings)
    assert files_under(tmp_path / "out") == []


def test_views_for_segments_without_a_segments_file(settings: Settings) -> None:
    missing = settings.with_overrides(segments_file=settings.root / "no-such-segments.yaml")
    assert build.views_for_segments([], missing) == [None]
    assert build.views_for_segments(["donors", "funders", "donors"], missing) == [None, "donors", "funders"]
    with pytest.raises(AudienceError, match="not valid"):
        build.views_for_segments(["../etc"], missing)


def test_views_for_segments_checks_names_against_segments_file(settings: Settings) -> None:
    settings.segments_file.parent.mkdir(parents=True, exist_ok=True)
    settings.segments_file.write_text(
        "lists:\n  donors: {description: Donateurs}\n"
        "segments:\n"
        "  donors: {lists: [donors], view: donors}\n"
        "  everyone: {lists: [donors]}\n", encoding="utf-8")
    assert build.views_for_segments(["donors", "everyone"], settings) == [None, "donors"]
    with pytest.raises(AudienceError, match="unknown segment 'nobody'"):
        build.views_for_segments(["nobody"], settings)


def test_a_section_audience_that_no_segment_has_is_caught_with_its_line(settings: Settings,
                                                                        project: Path) -> None:
    source = (project / SAMPLE).read_text(encoding="utf-8")
    assert "audience: [funders]" in source
    typo = project / "newsletters" / "typo.yaml"
    typo.write_text(source.replace("audience: [funders]", "audience: [fundres]"), encoding="utf-8")
    line = next(n for n, text in enumerate(typo.read_text(encoding="utf-8").splitlines(), 1)
                if "audience: [fundres]" in text)
    with pytest.raises(ContentError) as caught:
        build.build_variants(typo, ["nl"], [None, "funders"], settings)
    message = str(caught.value)
    assert f"typo.yaml:{line}:" in message
    assert "'fundres'" in message and "did you mean 'funders'?" in message


def test_an_unknown_audience_is_named_by_its_error_path_and_line(project, settings):
    text = (project / SAMPLE).read_text(encoding="utf-8")
    marker = "  - id: lokpuber\n"
    assert marker in text
    (project / SAMPLE).write_text(text.replace(marker, marker + "    audience: [donors, funderz]\n"),
                                  encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        build.build_variants(project / SAMPLE, ["nl"], [None], settings)
    (problem,) = caught.value.problems
    assert problem.field == "sections[1].audience[1]"
    assert problem.line == text[:text.index(marker)].count("\n") + 2
    assert "did you mean 'funders'?" in problem.message
