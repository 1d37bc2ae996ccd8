"""Markers are postbode's alone: newsletter text, templates and catalogs holding one are refused."""
from __future__ import annotations

from pathlib import Path

import pytest

from postbode import marker_guard
from postbode.content import load_newsletter
from postbode.errors import ContentError

from conftest import SAMPLE

NEWSLETTER = "2018-07-resultaten"
LINK = '      url: "https://www.example.org/rapport-aangifte-doe-je-niet"'


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text in line)


def plant_in_yaml(project: Path) -> int:
    """A link in the newsletter that would carry every reader's preferences token elsewhere."""
    path = project / SAMPLE
    text = path.read_text(encoding="utf-8")
    assert LINK in text
    path.write_text(text.replace(LINK, '      url: "https://elders.example.org/?next=__PB_PREFERENCES_URL__"'),
                    encoding="utf-8")
    return line_of(path, "__PB_PREFERENCES_URL__")


def plant_in_po(project: Path) -> tuple[Path, int]:
    """A translator's msgstr with a marker in a Markdown link."""
    po = project / "locales" / "en" / "LC_MESSAGES" / f"{NEWSLETTER}.po"
    text = po.read_text(encoding="utf-8")
    old = 'msgstr "Why young victims rarely go to the police"'
    assert old in text
    po.write_text(text.replace(old, 'msgstr "Why young victims [rarely](https://elders.example.org/'
                                    '__PB_PREFERENCES_URL__) go to the police"'), encoding="utf-8")
    return po, line_of(po, "__PB_PREFERENCES_URL__")


def test_a_yaml_link_with_a_marker_is_refused_with_file_and_line(project):
    line = plant_in_yaml(project)
    with pytest.raises(ContentError) as caught:
        load_newsletter(project / SAMPLE)
    problems = [p for p in caught.value.problems if "__PB_PREFERENCES_URL__" in p.message]
    assert len(problems) == 1
    assert problems[0].line == line and problems[0].file.endswith(f"{NEWSLETTER}.yaml")
    assert "personalisation marker" in problems[0].message


@pytest.mark.parametrize("text", ["__PB_PREFERENCES_URL__", "__pb_unsubscribe_url__", "__PB_ANYTHING__"])
def test_anything_shaped_like_a_marker_in_text_is_refused(project, text):
    path = project / SAMPLE
    source = path.read_text(encoding="utf-8")
    path.write_text(source.replace("Vier organisaties, één doel", f"Vier {text} organisaties, één doel"),
                    encoding="utf-8")
    with pytest.raises(ContentError, match="personalisation marker"):
        load_newsletter(path)


@pytest.mark.parametrize("command", ["check", "build"])
def test_check_and_build_refuse_a_marker_in_the_yaml(invoke, project, command):
    line = plant_in_yaml(project)
    result = invoke(command, SAMPLE, "-l", "nl")
    assert result.exit_code == 1
    assert f"{NEWSLETTER}.yaml:{line}" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["check", "build"])
def test_check_and_build_refuse_a_marker_in_a_po_msgstr(invoke, project, command):
    po, line = plant_in_po(project)
    result = invoke(command, SAMPLE, "-l", "nl")  # even when that language is not built
    assert result.exit_code == 1
    assert f"{NEWSLETTER}.po:{line}" in " ".join(result.output.split()).replace(" ", "") \
        or f"{NEWSLETTER}.po:{line}" in result.output
    assert "personalisation marker" in result.output


def test_send_refuses_a_marker_in_a_po_msgstr_and_sends_nothing(invoke, project, send_settings):
    po, line = plant_in_po(project)
    result = invoke("send", SAMPLE, "--segment", "everyone", "--yes")
    assert result.exit_code == 1
    assert f"{NEWSLETTER}.po:{line}" in result.output
    assert not list((project / "outbox").rglob("*.eml"))


def test_a_continued_msgstr_is_read_whole():
    text = 'msgid "Lees meer"\nmsgstr ""\n"Read [more](https://elders.example.org/__PB_"\n"WEB_URL__)"\n'
    found = list(marker_guard.po_strings(text))
    assert found[1][:2] == (2, "msgstr") and "__PB_WEB_URL__" in found[1][2]
    problems = marker_guard.catalog_problems([])
    assert problems == []


def test_a_marker_typed_into_a_template_is_refused(project, settings):
    footer = project / "templates" / "partials" / "footer.html"
    footer.write_text(footer.read_text(encoding="utf-8") + "\n<a href=\"__PB_UNSUBSCRIBE_URL__\">x</a>\n",
                      encoding="utf-8")
    problems = marker_guard.template_problems(settings.templates_dir)
    assert [(Path(p.file).name, p.line) for p in problems] == \
        [("footer.html", line_of(footer, "__PB_UNSUBSCRIBE_URL__"))]


def test_the_shipped_templates_and_catalogs_hold_no_marker(settings):
    marker_guard.check(settings, NEWSLETTER)  # raises if any
