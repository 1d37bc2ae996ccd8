"""The content stage: the sample loads; every broken input gives its precise, located message."""
from __future__ import annotations

import shutil
import struct
import zlib
from decimal import Decimal
from pathlib import Path

import pytest

from postbode.content import Newsletter, image_size, load_newsletter
from postbode.errors import ContentError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "newsletters" / "2018-07-resultaten.yaml"
BROKEN = REPO / "tests" / "data" / "broken"

MINIMAL = """\
id: proef
date: 2018-07-12T10:00:00+02:00
subject: "Onderwerp"
preheader: "Voortekst"
intro: "Inleiding"
sections:
  - id: een
    title: "Titel"
    body: "Tekst"
sign_off: "Groet"
"""

# file → every problem it must report: (line, column, field path, words the message must contain)
CORPUS = {
    "syntax-error.yaml": [(4, 13, "", "YAML syntax error")],
    "image-without-alt.yaml": [(14, 7, "sections[1].image.alt",
                                "missing — every image needs alt text for screen readers")],
    "naive-date.yaml": [(2, 7, "date", "without UTC offset — add +01:00 (winter time), +02:00")],
    "float-money.yaml": [(11, 16, "sections[0].figures[0].value", 'must be a quoted string, e.g. value: "1.234,50"')],
    "unknown-field.yaml": [(8, 5, "sections[0].titel", "unknown field 'titel' — did you mean 'title'?")],
    "duplicate-key.yaml": [(6, 1, "subject", "duplicate key 'subject' (first on line 3)")],
    "wrong-type.yaml": [(9, 7, "sections[0].title", "expected text, found a list"),
                        (11, 14, "sections[0].figures", "expected a list")],
    "yaml-traps.yaml": [(3, 10, "subject", 'unquoted no as a yes/no value, not text — quote it: "no"'),
                        (4, 12, "preheader", 'unquoted on as a yes/no value'),
                        (5, 8, "intro", 'YAML reads 010 as the octal number 8 — quote it ("010")'),
                        (8, 12, "sections[0].title", 'YAML reads 2018 as a number, not text — quote it: "2018"'),
                        (10, 16, "sections[0].audience[0]", 'unquoted yes as a yes/no value')],
    "empty.yaml": [(None, None, "", "the file is empty")],
    "non-utf8.yaml": [(3, 14, "", "is not valid UTF-8 (byte 0xE9) — save the file as UTF-8")],
    "many-problems.yaml": [
        (1, 5, "id", "must be a slug"),
        (2, 7, "date", "without UTC offset"),
        (11, 7, "sections[0].image.alt", "every image needs alt text"),
        (11, 12, "sections[0].image.src", "use https://"),
        (13, 16, "sections[0].figures[0].value", "'12.5' is not a number in Dutch notation: read as English it is 12.5"),
        (14, 15, "sections[0].figures[0].kind", "must be one of: number, currency or percent"),
        (16, 9, "sections[0].figures[1].currency", "needs an ISO 4217 code"),
        (20, 12, "sections[0].link.url", "must be a web address starting with https://"),
        (22, 9, "sections[1].id", "section id 'een' is already used by sections[0]"),
        (23, 12, "sections[1].title", "is empty — write the text"),
        (27, 3, "translator_notes.sections.een.titel", "did you mean 'sections.een.title'?"),
    ],
}


def where(shown: str, line: int | None, column: int | None) -> str:
    return shown + (f":{line}:{column}" if line is not None else "")


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ContentError) as caught:
        load_newsletter(path)
    return [str(p) for p in caught.value.problems]


def assert_problems(path: Path, shown: str, expected: list[tuple]) -> None:
    problems = problems_of(path)
    assert len(problems) == len(expected), problems
    for text, (line, column, field, words) in zip(problems, expected):
        prefix = where(shown, line, column) + ":" + (f" {field}:" if field else "")
        assert text.startswith(prefix), (text, prefix)
        assert words in text, (text, words)


def write(folder: Path, text: str | bytes, name: str = "nieuwsbrief.yaml") -> Path:
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def tiny_png(path: Path, width: int, height: int) -> None:
    rows = b"".join(b"\x00" + b"\x80\x80\x80" * width for _ in range(height))
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# --- the sample ---------------------------------------------------------------

@pytest.fixture
def sample(monkeypatch: pytest.MonkeyPatch) -> Newsletter:
    monkeypatch.chdir(REPO)
    return load_newsletter(SAMPLE)


def test_sample_loads_with_its_facts(sample: Newsletter) -> None:
    assert sample.id == "2018-07-resultaten"
    assert sample.date.isoformat() == "2018-07-12T10:00:00+02:00"
    assert [s.id for s in sample.sections] == ["aangifte", "lokpuber", "toerisme", "verantwoording", "donateurs"]
    toerisme = sample.sections[2]
    assert toerisme.figures[0].value == Decimal("249") and toerisme.figures[0].kind == "number"
    assert toerisme.image is not None and toerisme.image.credit == "Beeld: illustratie"
    assert (toerisme.image.width, toerisme.image.height) == (600, 300)  # from the PNG's own 1200×600
    assert sample.acknowledgement is not None
    assert sample.acknowledgement.funders == ["Nationale Postcode Loterij", "Adessium", "Stichting Janivo"]
    assert "100%" in sample.intro
    assert sample.source_path == SAMPLE


def test_sample_sections_per_view(sample: Newsletter) -> None:
    assert [s.id for s in sample.sections_for("funders")] == ["aangifte", "lokpuber", "toerisme", "verantwoording"]
    assert [s.id for s in sample.sections_for("donors")] == ["aangifte", "lokpuber", "toerisme", "donateurs"]
    assert [s.id for s in sample.sections_for(None)] == ["aangifte", "lokpuber", "toerisme"]


def test_sample_image_file_exists(sample: Newsletter) -> None:
    image = sample.sections[2].image
    assert image is not None
    assert sample.image_file(image.src) == REPO / "newsletters" / "images" / "toerisme-training.png"
    assert image_size(sample.image_file(image.src)) == (1200, 600)
    assert sample.image_file("https://www.example.org/x.png") is None


def test_text_fields_use_the_agreed_paths_and_lines(sample: Newsletter) -> None:
    paths = [path for path, _ in sample.text_fields()]
    assert paths[:3] == ["subject", "preheader", "intro"]
    for path in ("sections.toerisme.title", "sections.toerisme.body", "sections.toerisme.image.alt",
                 "sections.toerisme.image.credit", "sections.toerisme.figures.249.label",
                 "sections.aangifte.link.label", "acknowledgement.text"):
        assert path in paths
    assert paths[-1] == "sign_off"
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    assert set(sample.field_lines) == set(paths)
    for path, line in sample.field_lines.items():
        key = path.rsplit(".", 1)[-1]
        assert lines[line - 1].lstrip(" -").startswith(f"{key}:"), (path, line)
    assert sample.field_lines["subject"] == 8
    assert "field_lines" not in sample.model_dump() and "source_path" not in sample.model_dump()


def test_translator_notes(sample: Newsletter) -> None:
    assert "lokpuber" in sample.note_for("sections.lokpuber.title").lower()
    assert "Kamervragen" in sample.note_for("sections.aangifte.body")
    assert sample.note_for("sections.toerisme.title") is None
    paths = {path for path, _ in sample.text_fields()}
    assert set(sample.translator_notes) <= paths


def test_with_texts_replaces_only_the_given_fields(sample: Newsletter) -> None:
    translated = sample.with_texts({"subject": "Results summer 2018",
                                    "sections.toerisme.figures.249.label": "tourism professionals trained",
                                    "sections.toerisme.image.alt": "Colour gradient"})
    assert translated.subject == "Results summer 2018"
    assert translated.sections[2].figures[0].label == "tourism professionals trained"
    assert translated.sections[2].figures[0].value == Decimal("249")
    assert translated.sections[2].image.alt == "Colour gradient"
    assert translated.sections[2].image.src == sample.sections[2].image.src
    assert translated.intro == sample.intro
    assert sample.subject.startswith("Resultaten")  # the original is untouched
    assert translated.field_lines == sample.field_lines and translated.source_path == sample.source_path
    assert sample.with_texts(dict(sample.text_fields())) == sample


def test_with_texts_refuses_unknown_paths(sample: Newsletter) -> None:
    with pytest.raises(KeyError, match="sections.nergens.title"):
        sample.with_texts({"sections.nergens.title": "x"})


def test_newsletter_is_frozen(sample: Newsletter) -> None:
    with pytest.raises(Exception, match="frozen"):
        sample.subject = "anders"  # type: ignore[misc]


# --- the broken corpus ------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CORPUS))
def test_broken_input_gives_located_messages(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(BROKEN / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert_problems(Path(name), name, CORPUS[name])


def test_the_error_text_lists_every_problem_with_a_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(BROKEN)
    with pytest.raises(ContentError) as caught:
        load_newsletter(BROKEN / "many-problems.yaml")
    text = str(caught.value).splitlines()
    assert text[0] == "many-problems.yaml: 11 problems — nothing was written"
    assert len(text) == 12 and text[1].startswith("many-problems.yaml:1:5: id:")


def test_binary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "foto.yaml")
    assert_problems(Path("foto.yaml"), "foto.yaml", [(3, 1, "", "is a binary file, not YAML text")])


def test_file_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL + "# " + "x" * (5_000_000 - len(MINIMAL) - 3) + "\n", "groot.yaml")
    assert (tmp_path / "groot.yaml").stat().st_size == 5_000_000
    assert_problems(Path("groot.yaml"), "groot.yaml", [(None, None, "", "the file is 5.0 MB; a newsletter may be at most 1 MB")])


def test_utf16_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL.encode("utf-16"), "utf16.yaml")
    assert_problems(Path("utf16.yaml"), "utf16.yaml", [(1, 1, "", "is saved as UTF-16 — save it as UTF-8")])


def test_only_comments_is_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "# nog niets\n\n", "leeg.yaml")
    assert_problems(Path("leeg.yaml"), "leeg.yaml", [(None, None, "", "the file is empty")])


def test_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert_problems(Path("nergens.yaml"), "nergens.yaml", [(None, None, "", "file not found")])


def test_path_outside_the_working_folder_is_shown_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "elders").mkdir()
    monkeypatch.chdir(tmp_path / "elders")
    path = write(tmp_path, MINIMAL.replace("id: proef", "id: Proef"))
    assert_problems(path, str(path), [(1, 5, "id", "must be a slug")])


def test_a_list_instead_of_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "- id: proef\n- subject: x\n")
    assert_problems(Path("nieuwsbrief.yaml"), "nieuwsbrief.yaml", [(1, 1, "", "the file holds a list, not fields")])


def test_missing_fields_point_at_their_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL.replace('preheader: "Voortekst"\n', "").replace('    body: "Tekst"\n', ""))
    assert_problems(Path("nieuwsbrief.yaml"), "nieuwsbrief.yaml", [
        (1, 1, "preheader", "missing — give the short line mail clients show after the subject"),
        (6, 5, "sections[0].body", "missing — write the section's text"),
    ])


def test_date_without_time_and_unparseable_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL.replace("2018-07-12T10:00:00+02:00", "2018-07-12"), "a.yaml")
    write(tmp_path, MINIMAL.replace("2018-07-12T10:00:00+02:00", "12 juli 2018"), "b.yaml")
    assert_problems(Path("a.yaml"), "a.yaml", [(2, 7, "date", "a date without time — give date, time and UTC offset")])
    assert_problems(Path("b.yaml"), "b.yaml", [(2, 7, "date", "expected an ISO date-time with UTC offset")])


def test_z_and_winter_offsets_are_accepted(tmp_path: Path) -> None:
    for value in ("2018-12-12T10:00:00Z", "2018-12-12T10:00:00+01:00", '"2018-12-12T10:00:00+01:00"'):
        path = write(tmp_path, MINIMAL.replace("2018-07-12T10:00:00+02:00", value))
        assert load_newsletter(path).date.utcoffset() is not None


def test_duplicate_key_inside_a_section_names_both_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL.replace('    body: "Tekst"\n', '    body: "Tekst"\n    body: "Ander"\n'))
    assert_problems(Path("nieuwsbrief.yaml"), "nieuwsbrief.yaml",
                    [(10, 5, "sections[0].body", "duplicate key 'body' (first on line 9) — keep only one")])


def test_unknown_top_level_field_without_close_match_lists_known_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL + "kleur: rood\n")
    assert_problems(Path("nieuwsbrief.yaml"), "nieuwsbrief.yaml",
                    [(11, 1, "kleur", "unknown field 'kleur' — known fields here: id, date, subject")])


def test_internal_fields_cannot_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL + "field_lines: {}\nsource_path: /etc/passwd\n")
    assert_problems(Path("nieuwsbrief.yaml"), "nieuwsbrief.yaml", [
        (11, 1, "field_lines", "unknown field 'field_lines'"),
        (12, 1, "source_path", "unknown field 'source_path'"),
    ])


def test_anchors_and_aliases_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL.replace('subject: "Onderwerp"', 'subject: &s "Onderwerp"')
          .replace('preheader: "Voortekst"', "preheader: *s"))
    assert_problems(Path("nieuwsbrief.yaml"), "nieuwsbrief.yaml",
                    [(4, 1, "preheader", "anchors and aliases (&name, *name) are not supported")])


def test_empty_value_where_text_is_expected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL.replace('intro: "Inleiding"', "intro:"))
    assert_problems(Path("nieuwsbrief.yaml"), "nieuwsbrief.yaml",
                    [(5, 7, "intro", "is empty — write the text after the colon, or remove the line")])


def test_local_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "images").mkdir()
    tiny_png(tmp_path / "images" / "klein.png", 40, 30)
    image = '    image:\n      src: {src}\n      alt: "Iets"\n'
    body = '    body: "Tekst"\n'
    good = write(tmp_path, MINIMAL.replace(body, body + image.format(src="images/klein.png")), "goed.yaml")
    assert load_newsletter(good).sections[0].image.height == 450  # 600 wide, 4:3
    cases = {
        "images/weg.png": "file images/weg.png not found",
        "newsletters/images/klein.png": "write the path relative to the newsletter's folder: images/klein.png",
        "../geheim.png": "must be an https URL or a file under newsletters/images/",
        "images/klein.svg": "'.svg' is not an image mail clients show",
    }
    for src, words in cases.items():
        write(tmp_path, MINIMAL.replace(body, body + image.format(src=src)), "fout.yaml")
        assert_problems(Path("fout.yaml"), "fout.yaml", [(11, 12, "sections[0].image.src", words)])


def test_logos_need_alt_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL + 'acknowledgement:\n  text: "Dank"\n  logos:\n    - src: "https://www.example.org/logo.png"\n')
    assert_problems(Path("nieuwsbrief.yaml"), "nieuwsbrief.yaml",
                    [(14, 7, "acknowledgement.logos[0].alt", "every image needs alt text")])


def test_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    figures = ('    figures:\n      - {value: "125.000,00", kind: currency, currency: EUR, label: "voorbeeldbedrag"}\n'
               '      - {value: "85", kind: percent, label: "voorbeeldaandeel"}\n')
    body = '    body: "Tekst"\n'
    loaded = load_newsletter(write(tmp_path, MINIMAL.replace(body, body + figures)))
    money, share = loaded.sections[0].figures
    assert money.value == Decimal("125000.00") and money.currency == "EUR" and money.number == Decimal("125000.00")
    assert share.value == Decimal("85") and share.number == Decimal("0.85")
    write(tmp_path, MINIMAL.replace(body, body + figures.replace("EUR", "EURO").replace("kind: percent", "kind: percent, currency: EUR")))
    assert_problems(Path("nieuwsbrief.yaml"), "nieuwsbrief.yaml", [
        (11, 57, "sections[0].figures[0].currency", "'EURO' is not an ISO 4217 currency code"),
        (12, 48, "sections[0].figures[1].currency", "only a figure of kind currency has a currency"),
    ])


def test_template_and_script_text_is_kept_literally(tmp_path: Path) -> None:
    text = "{{ 7*7 }} {% include 'x' %} <script>alert(1)</script>"
    path = write(tmp_path, MINIMAL.replace('"Titel"', "'{{ 7*7 }}'\n    literal: true")
                 .replace('body: "Tekst"', 'body: |\n      ' + text)
                 .replace('subject: "Onderwerp"', "subject: \"<script>alert(1)</script>\""))
    loaded = load_newsletter(path)
    assert loaded.sections[0].title == "{{ 7*7 }}"
    assert loaded.sections[0].body == text
    assert loaded.subject == "<script>alert(1)</script>"


# --- the same corpus through the command line -----------------------------------------

CLI_CASES = [name for name in sorted(CORPUS) if CORPUS[name][0][0] is not None]


@pytest.mark.parametrize("name", CLI_CASES)
def test_check_reports_broken_input_without_traceback(name: str, project: Path, invoke) -> None:
    shutil.copy(BROKEN / name, project / "newsletters" / name)
    result = invoke("check", f"newsletters/{name}")
    assert result.exit_code == 1, result.output
    line, column, _, words = CORPUS[name][0]
    assert f"newsletters/{name}:{line}:{column}:" in result.output
    assert words in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_check_reports_generated_broken_files(project: Path, invoke) -> None:
    write(project / "newsletters", b"\x00\x01\x02binary", "binair.yaml")
    write(project / "newsletters", MINIMAL + "#" * 5_000_000, "groot.yaml")
    for name, words in (("binair.yaml", "binary file"), ("groot.yaml", "at most 1 MB")):
        result = invoke("check", f"newsletters/{name}")
        assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output


def test_build_of_broken_input_writes_nothing(project: Path, invoke) -> None:
    shutil.copy(BROKEN / "many-problems.yaml", project / "newsletters" / "many-problems.yaml")
    result = invoke("build", "newsletters/many-problems.yaml", "--out", "uit")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "newsletters/many-problems.yaml:22:9: sections[1].id:" in result.output
    assert not (project / "uit").exists()


def test_check_accepts_the_sample(project: Path, invoke) -> None:
    result = invoke("check", "newsletters/2018-07-resultaten.yaml")
    assert result.exit_code == 0, result.output


def test_image_size_reads_png_gif_and_jpeg_headers(tmp_path: Path) -> None:
    tiny_png(tmp_path / "a.png", 12, 7)
    (tmp_path / "b.gif").write_bytes(b"GIF89a" + struct.pack("<HH", 20, 10) + b"\x00" * 20)
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + b"\x00" * 9
    sof0 = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 480, 640) + b"\x00" * 10
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8" + app0 + sof0)
    (tmp_path / "d.png").write_bytes(b"not an image")
    assert image_size(tmp_path / "a.png") == (12, 7)
    assert image_size(tmp_path / "b.gif") == (20, 10)
    assert image_size(tmp_path / "c.jpg") == (640, 480)
    assert image_size(tmp_path / "d.png") is None
    assert image_size(tmp_path / "missing.png") is None


def test_a_newsletter_needs_a_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = MINIMAL.split("sections:")[0] + "sections: []\nsign_off: \"Groet\"\n"
    write(tmp_path, text)
    assert_problems(Path("nieuwsbrief.yaml"), "nieuwsbrief.yaml",
                    [(6, 11, "sections", "missing — a newsletter needs at least one section")])


# --- build --out: every broken input is refused before anything is written ---------------

GENERATED = {
    "binary.yaml": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "is a binary file, not YAML text"),
    "five-mb.yaml": ((MINIMAL + "# " + "x" * 5_000_000 + "\n").encode("utf-8"), "a newsletter may be at most 1 MB"),
}


def broken_inputs() -> list[str]:
    return sorted(CORPUS) + sorted(GENERATED)


@pytest.mark.parametrize("name", broken_inputs())
def test_build_of_each_broken_input_exits_1_and_writes_nothing(name: str, project: Path, invoke) -> None:
    target = project / "newsletters" / name
    if name in GENERATED:
        target.write_bytes(GENERATED[name][0])
        line, words = None, GENERATED[name][1]
    else:
        shutil.copy(BROKEN / name, target)
        line, column, _, words = CORPUS[name][0]
    out = project / "uit"
    out.mkdir()
    result = invoke("build", f"newsletters/{name}", "--out", "uit")
    assert result.exit_code == 1, result.output
    shown = f"newsletters/{name}" + (f":{line}:{column}:" if line is not None else ":")
    assert shown in result.output, result.output
    assert words in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert list(out.iterdir()) == []


def test_template_syntax_in_text_is_refused_with_a_personal_field_hint(tmp_path: Path) -> None:
    body = 'body: |\n      Eerste regel.\n      Beste {{ voornaam }}, en {% if x %}.'
    path = write(tmp_path, MINIMAL.replace('body: "Tekst"', body))
    with pytest.raises(ContentError) as caught:
        load_newsletter(path)
    first, second = caught.value.problems
    assert (first.line, first.field) == (11, "sections[0].body")
    assert "did you mean a personal field? write {voornaam}" in first.message
    assert "literal: true" in first.message
    assert second.line == 11 and "{% if x %}" in second.message


@pytest.mark.parametrize("place,replace", [
    ('body: "Tekst"', 'body: "Zie [het rapport](http://example.org/rapport)."'),
    ('body: "Tekst"', 'body: "Zie <http://example.org/rapport>."'),
    ('body: "Tekst"', 'body: "Tekst"\n    link: {url: "http://example.org/rapport", label: "Lees"}'),
])
def test_plain_http_links_are_refused(tmp_path: Path, place: str, replace: str) -> None:
    path = write(tmp_path, MINIMAL.replace(place, replace))
    with pytest.raises(ContentError) as caught:
        load_newsletter(path)
    assert len(caught.value.problems) == 1
    assert "https://example.org/rapport" in caught.value.problems[0].message


def test_https_and_mailto_links_pass(tmp_path: Path) -> None:
    body = 'body: "Zie [dit](https://example.org/a) of mail <info@example.org>."\n    link: {url: "mailto:info@example.org", label: "Mail"}'
    assert load_newsletter(write(tmp_path, MINIMAL.replace('body: "Tekst"', body))).sections[0].link


def test_a_tab_in_the_indentation_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace('    title: "Titel"', '\ttitle: "Titel"'))
    with pytest.raises(ContentError) as caught:
        load_newsletter(path)
    (problem,) = caught.value.problems
    assert problem.line == 8 and "indent with spaces, not tabs (line 8)" in problem.message
    assert "cannot start any token" not in str(caught.value)


def test_an_unquoted_whole_number_value_is_told_to_quote_it(tmp_path: Path) -> None:
    figures = 'body: "Tekst"\n    figures:\n      - value: 412\n        label: "trainingen"'
    with pytest.raises(ContentError) as caught:
        load_newsletter(write(tmp_path, MINIMAL.replace('body: "Tekst"', figures)))
    (problem,) = caught.value.problems
    assert problem.field == "sections[0].figures[0].value"
    assert problem.message.startswith('quote it: value: "412"') and "cents" not in problem.message
