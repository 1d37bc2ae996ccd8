"""The translators' commands: extract, init, update, compile, status — on a copy of the project."""
from __future__ import annotations

import json
import subprocess
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

from postbode.i18n import catalogs
from postbode.config import Settings
from postbode.content import load_newsletter
from postbode.errors import TranslationError
from postbode.i18n.extract import extract_newsletter

from tests.i18n.test_i18n import NEWSLETTER_ID, SAMPLE, blank, translate

CHANGED_FROM = "In september volgt een e-learning voor receptie, technische dienst en schoonmaak."
CHANGED_TO = "In oktober volgt een e-learning voor receptie, technische dienst en schoonmaak."
CHANGED_KEY = f"{NEWSLETTER_ID}:sections.toerisme.body:2"


def pot(settings: Settings, domain: str = NEWSLETTER_ID):
    return catalogs.read_catalog(catalogs.pot_path(settings, domain), check=False)


def po(settings: Settings, language: str, domain: str = NEWSLETTER_ID):
    return catalogs.read_catalog(catalogs.po_path(settings, language, domain), check=False)


def msgfmt_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["msgfmt", "--check", "-o", "/dev/null", str(path)],
                          capture_output=True, text=True)


def test_extract_writes_one_entry_per_field_with_context_reference_and_note(invoke, settings: Settings):
    result = invoke("i18n", "extract")
    assert result.exit_code == 0, result.output
    catalog = pot(settings)
    newsletter = load_newsletter(settings.root / SAMPLE)
    subject = catalog.get(newsletter.subject, f"{NEWSLETTER_ID}:subject")
    assert subject.locations == [(f"{SAMPLE}:subject", None)]  # a field path: stable when lines move
    assert newsletter.note_for("subject") in " ".join(subject.auto_comments)
    contexts = [m.context for m in catalog if m.id]
    assert len(contexts) == len(set(contexts))
    assert f"{NEWSLETTER_ID}:sections.toerisme.body:1" in contexts
    assert CHANGED_KEY in contexts
    assert f"{NEWSLETTER_ID}:sections.toerisme.body" not in contexts
    assert f"{NEWSLETTER_ID}:sections.toerisme.figures.249.label" in contexts
    second = next(m for m in catalog if m.context == CHANGED_KEY)
    assert second.id == CHANGED_FROM
    assert any("Alinea 2 van 2 van sections.toerisme.body" in c for c in second.auto_comments)
    assert "md-text" in second.flags
    template = pot(settings, catalogs.MESSAGES)
    assert template.get("Bekijk deze e-mail in uw browser") is not None


def test_newsletter_text_gets_no_false_python_format_flag(project: Path, settings: Settings):
    source = project / SAMPLE
    text = source.read_text("utf-8")
    source.write_text(text.replace('subject: "Resultaten zomer 2018:', 'subject: "Voor 100% doel en 5% s:'), "utf-8")
    catalogs.extract(settings)
    subject = next(m for m in pot(settings) if m.context == f"{NEWSLETTER_ID}:subject")
    assert subject.id.startswith("Voor 100% doel")
    assert "python-format" not in subject.flags and "no-python-format" in subject.flags
    intro = next(m for m in pot(settings) if m.context == f"{NEWSLETTER_ID}:intro")
    assert "100%" in intro.id and "python-format" not in intro.flags
    catalogs.update(settings)
    translate(settings, "de", {"subject": "Für 100% Ziel"})
    assert msgfmt_check(catalogs.po_path(settings, "de", NEWSLETTER_ID)).returncode == 0
    catalogs.compile_all(settings)


def test_the_extractor_is_registered_for_babel(project: Path):
    registered = {ep.name: ep for ep in entry_points(group="babel.extractors")}
    assert registered["postbode_newsletter"].load() is extract_newsletter
    by_name = extract_from_file("postbode_newsletter", project / SAMPLE)
    assert by_name == extract_from_file(extract_newsletter, project / SAMPLE)
    assert by_name[0][3] == f"{NEWSLETTER_ID}:subject"


def test_changed_dutch_marks_exactly_that_entry_fuzzy_in_every_locale(project: Path, invoke, settings: Settings):
    languages = [lang for lang in settings.locales if lang != settings.source_locale]
    catalogs.extract(settings)  # start from catalogs that match the templates as they are now
    catalogs.update(settings)
    for language in languages:
        translate(settings, language, {"sections.toerisme.body:2": f"[{language}] e-learning"})
    before = {lang: {(m.context, m.string, m.fuzzy) for m in po(settings, lang) if m.id} for lang in languages}
    status_before = {(r["locale"], r["catalog"]): r for r in json.loads(invoke("i18n", "status", "--json").output)}

    source = project / SAMPLE
    source.write_text(source.read_text("utf-8").replace("In september volgt", "In oktober volgt"), "utf-8")
    assert invoke("i18n", "extract").exit_code == 0
    result = invoke("i18n", "update")
    assert result.exit_code == 0, result.output

    for language in languages:
        catalog = po(settings, language)
        after = {(m.context, m.string, m.fuzzy) for m in catalog if m.id}
        assert after - before[language] == {(CHANGED_KEY, f"[{language}] e-learning", True)}
        assert before[language] - after == {(CHANGED_KEY, f"[{language}] e-learning", False)}
        changed = next(m for m in catalog if m.context == CHANGED_KEY)
        assert changed.id == CHANGED_TO and changed.previous_id == [CHANGED_FROM]
        text = catalogs.po_path(settings, language, NEWSLETTER_ID).read_text("utf-8")
        assert f'#| msgid "{CHANGED_FROM}"' in text.replace('"\n#| "', "")
        assert msgfmt_check(catalogs.po_path(settings, language, NEWSLETTER_ID)).returncode == 0

    status_after = {(r["locale"], r["catalog"]): r for r in json.loads(invoke("i18n", "status", "--json").output)}
    for language in languages:
        old, new = status_before[(language, NEWSLETTER_ID)], status_after[(language, NEWSLETTER_ID)]
        assert new["fuzzy"] == old["fuzzy"] + 1
        assert new["translated"] == old["translated"] - 1
        assert new["total"] == old["total"]
        assert status_after[(language, "messages")] == status_before[(language, "messages")]


def test_removed_entries_become_obsolete_and_moved_paragraphs_keep_their_translation(
        project: Path, settings: Settings):
    blank(settings, "de")
    translate(settings, "de", {"sections.donateurs.title": "Danke", "sections.toerisme.body:2": "Im September"})
    source = project / SAMPLE
    text = source.read_text("utf-8")
    start = text.index("  - id: donateurs")
    end = text.index("acknowledgement:")
    text = text[:start] + text[end:]
    text = text.replace("      In september volgt", "      Een nieuwe alinea vooraf.\n\n      In september volgt")
    source.write_text(text, "utf-8")
    catalogs.extract(settings)
    catalogs.update(settings)
    catalog = po(settings, "de")
    assert any(key[1] == f"{NEWSLETTER_ID}:sections.donateurs.title" for key in catalog.obsolete)
    moved = next(m for m in catalog if m.context == f"{NEWSLETTER_ID}:sections.toerisme.body:3")
    assert (moved.id, moved.string, moved.fuzzy) == (CHANGED_FROM, "Im September", False)
    new = next(m for m in catalog if m.context == CHANGED_KEY)
    assert (new.id, new.string) == ("Een nieuwe alinea vooraf.", "")
    assert "Danke" in catalogs.po_path(settings, "de", NEWSLETTER_ID).read_text("utf-8")  # as #~


def test_status_counts_fuzzy_apart_from_translated(invoke, settings: Settings):
    blank(settings, "de")
    translate(settings, "de", {"subject": "Betreff", "intro": "Einleitung"})
    translate(settings, "de", {"preheader": "Vorschau"}, fuzzy=True)
    rows = json.loads(invoke("i18n", "status", "--json").output)
    row = next(r for r in rows if (r["locale"], r["catalog"]) == ("de", NEWSLETTER_ID))
    total = len(list(m for m in pot(settings) if m.id))
    assert (row["translated"], row["fuzzy"], row["untranslated"]) == (2, 1, total - 3)
    assert row["percent"] == round(100 * 2 / total, 1)
    table = invoke("i18n", "status")
    assert table.exit_code == 0 and "de" in table.output and NEWSLETTER_ID in table.output


def test_init_starts_a_new_language_with_its_plural_rule(invoke, settings: Settings):
    result = invoke("i18n", "init", "pl")
    assert result.exit_code == 0, result.output
    catalog = po(settings, "pl", catalogs.MESSAGES)
    assert catalog.num_plurals == 3
    assert msgfmt_check(catalogs.po_path(settings, "pl", catalogs.MESSAGES)).returncode == 0
    assert invoke("i18n", "init", "xx-nonsense").exit_code == 1


# --- broken catalogs ----------------------------------------------------------

def _break(settings: Settings, language: str, old: str, new: str, domain: str = catalogs.MESSAGES) -> tuple[Path, int]:
    """Replace text in a shipped .po; return its path and the line where the change starts."""
    path = catalogs.po_path(settings, language, domain)
    text = path.read_text("utf-8")
    assert old in text, old
    line = text[:text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1), "utf-8")
    return path, line


def test_compile_names_file_and_line_of_a_syntax_error(invoke, settings: Settings):
    path, line = _break(settings, "de", 'msgid "Beste lezer,"', 'msgid "Beste lezer,"\nmsgtxt "oops"')
    result = invoke("i18n", "compile")
    assert result.exit_code == 1
    assert f"de/LC_MESSAGES/messages.po:{line + 1}" in result.output
    assert "Traceback" not in result.output


def test_compile_names_file_and_line_of_a_wrong_placeholder(invoke, settings: Settings):
    blank(settings, "de")
    translate(settings, "de", {"Geachte %(name)s,": "Sehr geehrte(r) %(naam)s,"}, domain=catalogs.MESSAGES)
    path = catalogs.po_path(settings, "de", catalogs.MESSAGES)
    line = path.read_text("utf-8").split('msgid "Geachte %(name)s,"')[0].count("\n") + 1
    result = invoke("i18n", "compile")
    assert result.exit_code == 1
    assert f"de/LC_MESSAGES/messages.po:{line}" in result.output and "naam" in result.output
    assert msgfmt_check(path).returncode != 0  # GNU gettext agrees


def test_compile_names_a_bad_plural_header(invoke, settings: Settings):
    path, line = _break(settings, "ar", "nplurals=6;", "nplurals=2;")
    result = invoke("i18n", "compile")
    assert result.exit_code == 1
    assert f"ar/LC_MESSAGES/messages.po:{line}" in result.output and "nplurals=6" in result.output


def test_compile_names_a_plural_expression_that_does_not_parse(settings: Settings):
    _break(settings, "de", "plural=(n != 1)", "plural=(n !=! 1)")
    with pytest.raises(TranslationError) as caught:
        catalogs.compile_all(settings)
    assert "de/LC_MESSAGES/messages.po:" in str(caught.value) and "Plural-Forms" in str(caught.value)


def test_compile_writes_mo_files_and_warns_about_a_fuzzy_header(invoke, settings: Settings):
    path, _ = _break(settings, "de", 'msgid ""\nmsgstr ""\n"Project-Id', '#, fuzzy\nmsgid ""\nmsgstr ""\n"Project-Id')
    result = invoke("i18n", "compile")
    assert result.exit_code == 0, result.output
    assert "header is marked fuzzy" in result.output
    for source in catalogs.all_po_files(settings):
        assert source.with_suffix(".mo").stat().st_size > 0
    assert path.with_suffix(".mo").exists()


def test_every_i18n_command_has_a_summary_and_an_example(invoke):
    for command in ("extract", "init", "update", "compile", "status"):
        result = invoke("i18n", command, "--help")
        assert result.exit_code == 0
        assert "Example" in result.output and "python send.py i18n" in result.output


def test_check_reports_missing_and_fuzzy_entries_per_locale(invoke, settings: Settings):
    blank(settings, "de")
    translate(settings, "de", {"subject": "Betreff"})
    translate(settings, "de", {"intro": "Einleitung"}, fuzzy=True)
    result = invoke("check", SAMPLE, "--locale", "de_AT", "--locale", "en")
    assert result.exit_code == 0, result.output
    total = len([m for m in pot(settings) if m.id])
    assert f"de: {total - 2} missing, 1 fuzzy, 0 refused in locales/de/LC_MESSAGES/{NEWSLETTER_ID}.po" in result.output
    assert "fuzzy: intro" in result.output and "sections.toerisme.body:2" in result.output
    assert "note: en:" not in result.output  # English is complete
