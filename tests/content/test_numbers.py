"""Figure values are read in the source language's notation: in Dutch 125.000 is 125000."""
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from postbode.build import build_variants
from postbode.content import load_newsletter
from postbode.errors import ContentError

from conftest import SAMPLE

FIGURE = '      - value: "249"\n'


def with_value(project: Path, value: str) -> tuple[Path, int]:
    """The sample with its first figure written as `value` (its catalog name kept by an id)."""
    path = project / SAMPLE
    text = path.read_text(encoding="utf-8")
    assert FIGURE in text
    path.write_text(text.replace(FIGURE, f'      - value: "{value}"\n        id: "249"\n'), encoding="utf-8")
    line = next(n for n, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if f'value: "{value}"' in row)
    return path, line


@pytest.mark.parametrize("written, meant", [("125.000", Decimal("125000")), ("1.250", Decimal("1250")),
                                            ("1.250,50", Decimal("1250.50")), ("12,5", Decimal("12.5")),
                                            ("249", Decimal("249"))])
def test_dutch_notation_is_read_the_dutch_way(project, written, meant):
    path, _ = with_value(project, written)
    figure = load_newsletter(path).sections[2].figures[0]
    assert figure.value == meant


def test_125_000_renders_as_125_000_in_dutch_and_125_000_in_english(project, send_settings):
    path, _ = with_value(project, "125.000")
    result = build_variants(path, ["nl", "en"], [None], send_settings)
    dutch, english = result.variant("nl").text, result.variant("en").text
    assert re.search(r"\b125\.000\b", dutch) and "125,00" not in dutch
    assert re.search(r"\b125,000\b", english)


@pytest.mark.parametrize("written, english, dutch", [("1250.50", "1250.50", "125050"),
                                                     ("1,250.50", "1250.50", "1.2505")])
def test_english_notation_is_refused_with_both_readings(project, written, english, dutch):
    path, line = with_value(project, written)
    with pytest.raises(ContentError) as caught:
        load_newsletter(path)
    [problem] = [p for p in caught.value.problems if p.field == "sections[2].figures[0].value"]
    assert problem.line == line and problem.file.endswith("2018-07-resultaten.yaml")
    assert f"read as English it is {english}" in problem.message
    assert f"it could be {dutch}" in problem.message
    assert 'in Dutch write "1.250,50"' in problem.message


def test_check_names_file_and_line_of_an_english_value(invoke, project):
    path, line = with_value(project, "1250.50")
    result = invoke("check", SAMPLE, "-l", "nl")
    assert result.exit_code == 1
    assert f"2018-07-resultaten.yaml:{line}" in result.output
    assert "1.250,50" in " ".join(result.output.split())


def test_unquoted_numbers_stay_errors(project):
    path = project / SAMPLE
    path.write_text(path.read_text(encoding="utf-8").replace(FIGURE, "      - value: 125000\n"),
                    encoding="utf-8")
    with pytest.raises(ContentError, match='quote it: value: "125000"'):
        load_newsletter(path)


def test_the_catalog_still_names_the_figure_by_its_written_value(project):
    path = project / SAMPLE
    text = path.read_text(encoding="utf-8").replace(FIGURE, '      - value: "1.250"\n')
    path.write_text(text.replace("figures.249.label", "figures.1-250.label"), encoding="utf-8")
    newsletter = load_newsletter(path)
    assert newsletter.sections[2].figures[0].key == "1-250"
    assert "sections.toerisme.figures.1-250.label" in dict(newsletter.text_fields())
    assert "sections.toerisme.figures.1-250.label" in newsletter.field_lines
