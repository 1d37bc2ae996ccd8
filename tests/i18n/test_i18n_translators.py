"""What translators' tools need: catalogs GNU gettext, Poedit and Weblate accept after ordinary edits.

Checked with the real tools: GNU gettext's msgfmt -c, msgcat, msgmerge and
translate-toolkit's pofilter (what Weblate parses with).
"""
from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from babel import Locale
from babel.plural import to_gettext

from postbode.build import build_variants
from postbode.config import Settings
from postbode.content import load_newsletter
from postbode.errors import TranslationError
from postbode.i18n import catalogs, completeness_report, locale_chain, localize
from postbode.i18n.plurals import cldr_plural_forms
from postbode.i18n.pofile import split_blocks

from tests.i18n.test_i18n import NEWSLETTER_ID, SAMPLE, blank, translate

REPO = Path(__file__).resolve().parents[2]
CHANGED_TO = "In oktober volgt een e-learning voor receptie, technische dienst en schoonmaak."


def tool(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    """Run a GNU gettext program (Debian package gettext, see scripts/debian-packages.txt)."""
    if shutil.which(args[0]) is None:
        pytest.fail(f"{args[0]} is missing: install GNU gettext (apt-get install gettext)")
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    assert not check or result.returncode == 0, result.stderr
    return result


def msgfmt_c(path: Path) -> subprocess.CompletedProcess:
    return tool("msgfmt", "-c", "-o", "/dev/null", str(path))


def po(settings: Settings, language: str, domain: str = NEWSLETTER_ID):
    return catalogs.read_catalog(catalogs.po_path(settings, language, domain), check=False)


def entry(settings: Settings, language: str, key: str, domain: str = NEWSLETTER_ID):
    context = f"{NEWSLETTER_ID}:{key}" if domain == NEWSLETTER_ID else None
    found = [m for m in po(settings, language, domain) if m.id and
             (m.context == context if context else m.id == key)]
    assert len(found) == 1, (key, found)
    return found[0]


def reviewed(settings: Settings, language: str, strings: dict[str, str]) -> None:
    """Translate newsletter entries and mark them reviewed (not fuzzy)."""
    translate(settings, language, strings)
    path = catalogs.po_path(settings, language, NEWSLETTER_ID)
    catalog = catalogs.read_catalog(path, check=False)
    for message in catalog:
        if message.context and message.context.split(":", 1)[1] in strings:
            message.flags.discard("fuzzy")
    catalogs.write_catalog(path, catalog)


def edit_sample(project: Path, old: str, new: str) -> None:
    source = project / SAMPLE
    text = source.read_text("utf-8")
    assert old in text, old
    source.write_text(text.replace(old, new, 1), "utf-8")


def extract_and_update(settings: Settings) -> None:
    catalogs.extract(settings)
    catalogs.update(settings)


def line_of(path: Path, needle: str) -> int:
    text = path.read_text("utf-8")
    assert needle in text, needle
    return text[:text.index(needle)].count("\n") + 1


# --- 1. merging like msgmerge ---------------------------------------------------

DONATEURS = """  - id: donateurs
    audience: [donors]
    title: "Dank aan onze donateurs"
    body: |
      Ook uw gift helpt om kinderen beter te beschermen. Wilt u meer doen? Vertel
      vrienden of collega's over het werk van de coalitie.
"""


def test_a_section_removed_and_put_back_comes_back_translated_without_duplicates(project: Path,
                                                                                  settings: Settings):
    before = {lang: entry(settings, lang, "sections.donateurs.title").string for lang in ("en", "de")}
    assert all(before.values())
    edit_sample(project, DONATEURS, "")
    extract_and_update(settings)
    assert any(key[1] == f"{NEWSLETTER_ID}:sections.donateurs.title" for key in po(settings, "de").obsolete)
    edit_sample(project, "\nacknowledgement:", "\n" + DONATEURS + "\nacknowledgement:")
    extract_and_update(settings)
    for language, translation in before.items():
        path = catalogs.po_path(settings, language, NEWSLETTER_ID)
        back = entry(settings, language, "sections.donateurs.title")
        assert (back.string, back.fuzzy) == (translation, False)
        assert "#~ msgctxt" not in path.read_text("utf-8")
        assert msgfmt_c(path).returncode == 0, msgfmt_c(path).stderr
        assert tool("msgcat", "-o", "/dev/null", str(path)).returncode == 0
    catalogs.compile_all(settings)


def test_compile_refuses_a_message_that_is_both_live_and_obsolete_as_msgfmt_does(invoke, settings: Settings):
    path = catalogs.po_path(settings, "de", NEWSLETTER_ID)
    title = entry(settings, "de", "sections.donateurs.title")
    path.write_text(path.read_text("utf-8") + f'\n#~ msgctxt "{title.context}"\n#~ msgid "{title.id}"\n'
                    '#~ msgstr "Alter Titel"\n', "utf-8")
    assert msgfmt_c(path).returncode != 0 and "duplicate message definition" in msgfmt_c(path).stderr
    result = invoke("i18n", "compile")
    assert result.exit_code == 1
    line = path.read_text("utf-8").count("\n") - 1
    assert f"de/LC_MESSAGES/{NEWSLETTER_ID}.po:{line}" in result.output
    assert "duplicate message definition" in result.output
    assert invoke("check", SAMPLE).exit_code == 1
    catalogs.update(settings)  # update repairs it
    assert msgfmt_c(path).returncode == 0


def test_renaming_a_section_keeps_its_translations_as_fuzzy_suggestions(project: Path, settings: Settings):
    old = {key: entry(settings, "de", f"sections.toerisme.{key}").string for key in ("title", "body:2")}
    assert all(old.values())
    text = (project / SAMPLE).read_text("utf-8").replace("id: toerisme", "id: hotels")
    (project / SAMPLE).write_text(text.replace("sections.toerisme.", "sections.hotels."), "utf-8")
    extract_and_update(settings)
    path = catalogs.po_path(settings, "de", NEWSLETTER_ID)
    for key, translation in old.items():
        moved = entry(settings, "de", f"sections.hotels.{key}")
        assert (moved.string, moved.fuzzy) == (translation, True)
    assert f'#| msgctxt "{NEWSLETTER_ID}:sections.toerisme.title"' in path.read_text("utf-8")
    assert msgfmt_c(path).returncode == 0
    assert not any("toerisme" in (m.context or "") for m in po(settings, "de").obsolete.values())
    # GNU msgmerge reads postbode's result as its own: nothing left to merge
    pot = catalogs.pot_path(settings, NEWSLETTER_ID)
    merged = tool("msgmerge", "--previous", "-o", "-", str(path), str(pot), check=True).stdout
    assert merged.count("#, fuzzy") == path.read_text("utf-8").count("#, fuzzy")


def test_swapping_two_figures_keeps_each_translation_with_its_text(project: Path, settings: Settings):
    four = entry(settings, "en", "sections.verantwoording.figures.4.label").string
    three = entry(settings, "en", "sections.verantwoording.figures.3.label").string
    figures = """      - value: "4"
        kind: number
        label: "samenwerkende organisaties in de coalitie"
      - value: "3"
        kind: number
        label: "sporen waarop we dit halfjaar resultaat boekten"
"""
    swapped = "\n".join(figures.splitlines()[3:] + figures.splitlines()[:3]) + "\n"
    edit_sample(project, figures, swapped)
    extract_and_update(settings)
    newsletter = load_newsletter(project / SAMPLE)
    localized = localize(newsletter, "en", settings)
    labels = [f.label for f in localized.newsletter.sections[3].figures]
    assert labels == [three, four]
    assert catalogs.update(settings) == []


def test_an_untranslated_entry_whose_dutch_changes_does_not_become_fuzzy(project: Path, settings: Settings):
    blank(settings, "de")
    edit_sample(project, "In september volgt", "In oktober volgt")
    extract_and_update(settings)
    changed = entry(settings, "de", "sections.toerisme.body:2")
    assert (changed.string, changed.fuzzy, changed.previous_id) == ("", False, [])
    path = catalogs.po_path(settings, "de", NEWSLETTER_ID)
    stats = tool("msgfmt", "--statistics", "-o", "/dev/null", str(path), check=True).stderr
    assert "fuzzy" not in stats
    status = next(r for r in catalogs.status(settings) if (r.language, r.domain) == ("de", NEWSLETTER_ID))
    assert status.fuzzy == 0


# --- 2. checks as strict as msgfmt -c ------------------------------------------

@pytest.mark.parametrize("translation", ["Dear reader,", "Dear {name},"])
def test_a_dropped_placeholder_is_refused_with_file_and_line(invoke, settings: Settings, translation: str):
    translate(settings, "de", {"Geachte %(name)s,": translation}, domain=catalogs.MESSAGES)
    path = catalogs.po_path(settings, "de", catalogs.MESSAGES)
    assert msgfmt_c(path).returncode != 0  # GNU gettext refuses it too
    line = line_of(path, 'msgid "Geachte %(name)s,"')
    for command in (("i18n", "compile"), ("check", SAMPLE), ("build", SAMPLE)):
        result = invoke(*command)
        assert result.exit_code == 1, (command, result.output)
        assert f"de/LC_MESSAGES/messages.po:{line}" in result.output and "%(name)" in result.output


@pytest.fixture
def personal(project: Path, settings: Settings) -> Settings:
    """The sample with a personal `{first_name}` field in a title, extracted and updated."""
    edit_sample(project, 'title: "Dank aan onze donateurs"', 'title: "Dank, {first_name}"')
    extract_and_update(settings)
    return settings


def test_personal_field_placeholders_are_checked_too(personal: Settings):
    template = catalogs.read_catalog(catalogs.pot_path(personal, NEWSLETTER_ID), check=False)
    title = template.get("Dank, {first_name}", f"{NEWSLETTER_ID}:sections.donateurs.title")
    assert "python-brace-format" in title.flags
    reviewed(personal, "de", {"sections.donateurs.title": "Danke, {vorname}"})
    reviewed(personal, "en", {"sections.donateurs.title": "Thank you, {first_name}"})
    path = catalogs.po_path(personal, "de", NEWSLETTER_ID)
    assert msgfmt_c(path).returncode != 0
    with pytest.raises(TranslationError) as caught:
        catalogs.compile_all(personal)
    assert f"{path}:" in str(caught.value) and "{first_name}" in str(caught.value)
    # de falls back (reported); the mail shows the Dutch title with its placeholder intact
    newsletter = load_newsletter(personal.root / SAMPLE)
    localized = localize(newsletter, "de", personal)
    assert localized.newsletter.sections[4].title == "Dank, {first_name}"
    assert "sections.donateurs.title" in localized.fallbacks
    assert any("{first_name}" in str(p) for p in completeness_report(newsletter, personal)["de"].refused)


def test_a_personal_field_with_a_fallback_keeps_its_field_and_translates_its_fallback(project: Path,
                                                                                       settings: Settings):
    edit_sample(project, 'title: "Dank aan onze donateurs"', 'title: "Dank, {voornaam|lezer}"')
    extract_and_update(settings)
    reviewed(settings, "de", {"sections.donateurs.title": "Danke, {voornaam|Leserin oder Leser}"})
    catalogs.compile_all(settings)  # the fallback text is the translator's to change
    reviewed(settings, "de", {"sections.donateurs.title": "Danke, liebe Leserin, lieber Leser"})
    with pytest.raises(TranslationError) as caught:
        catalogs.compile_all(settings)
    assert "lost {voornaam}" in str(caught.value)


LINK = "[Watch Nederland](https://www.example.org/watch-nederland)"


@pytest.mark.parametrize("link, complaint", [
    ("[Watch Netherlands](https://evil.example.com/x)", "to https://evil.example.com/x"),
    ("[Watch Netherlands](https://www.example.org/watch-nederland", "lost the link"),
    ("Watch Netherlands", "lost the link"),
    ("[Watch Netherlands](https://www.example.org/watch-nederland) <b>now</b>", "adds HTML"),
])
def test_a_changed_or_broken_link_is_refused_with_file_and_line(invoke, settings: Settings, link: str,
                                                                  complaint: str):
    key = "sections.lokpuber.body:3"
    translation = f"For {link}, part of the Systemic Change programme, this means:"
    translate(settings, "en", {key: translation})
    translate(settings, "de", {key: translation})
    en = catalogs.po_path(settings, "en", NEWSLETTER_ID)
    line = line_of(en, f'msgctxt "{NEWSLETTER_ID}:{key}"')
    # en is 'require': check, build and send refuse, naming the .po line
    commands = [("check", SAMPLE)]
    if "evil" in link:
        commands += [("build", SAMPLE), ("send", SAMPLE, "--segment", "funders", "--yes")]
    for command in commands:
        result = invoke(*command)
        assert result.exit_code == 1, (command, result.output)
        assert f"en/LC_MESSAGES/{NEWSLETTER_ID}.po:" in result.output and complaint in result.output
    assert line - 1 <= int(re.search(rf"en/LC_MESSAGES/{NEWSLETTER_ID}\.po:(\d+)", result.output)[1]) <= line + 1
    # de is 'fallback': the Dutch paragraph goes out instead, and the build says so
    newsletter = load_newsletter(settings.root / SAMPLE)
    german = localize(newsletter, "de", settings)
    assert key in german.fallbacks and LINK in german.newsletter.sections[1].body
    assert not (settings.root / "outbox").exists() or not any((settings.root / "outbox").rglob("*.eml"))


def test_newsletter_entries_carry_md_text_and_html_strings_say_which_tags_stay(settings: Settings):
    template = catalogs.read_catalog(catalogs.pot_path(settings, NEWSLETTER_ID), check=False)
    flags = {m.context.split(":", 1)[1]: m.flags for m in template if m.id}
    assert "md-text" in flags["sections.lokpuber.body:3"] and "md-text" in flags["intro"]
    assert "md-text" not in flags["subject"] and "md-text" not in flags["sections.lokpuber.title"]
    messages = catalogs.read_catalog(catalogs.pot_path(settings, catalogs.MESSAGES), check=False)
    with_html = [m for m in messages if m.id and "<a " in str(m.id)]
    assert with_html and all(any("<a>" in c and "Behoud" in c for c in m.auto_comments) for m in with_html)


# --- 3. plural forms from CLDR --------------------------------------------------

TEN = ("ja", "zh_Hant", "ko", "vi", "tr", "pl", "ru", "cy", "ga", "ar")


@pytest.mark.parametrize("language", TEN)
def test_init_works_for_every_cldr_language_and_builds_a_mail(invoke, settings: Settings, language: str):
    if language == "ar":
        shutil.rmtree(settings.locales_dir / "ar")
    result = invoke("i18n", "init", language)
    assert result.exit_code == 0, result.output
    expected = cldr_plural_forms(Locale.parse(language))
    for domain in (catalogs.MESSAGES, NEWSLETTER_ID):
        path = catalogs.po_path(settings, language, domain)
        assert msgfmt_c(path).returncode == 0, msgfmt_c(path).stderr
        catalog = catalogs.read_catalog(path)
        assert (catalog.num_plurals, catalog.plural_expr) == (expected.count, expected.expression)
        text = path.read_text("utf-8")
        assert f"Language-Team: {Locale.parse(language).english_name} <" in text
        assert "LL@li.org" not in text
    wide = settings.with_overrides(locales=(*settings.locales, language))
    result = build_variants(settings.root / SAMPLE, [language], [None], wide)
    html = result.variant(language, None).html
    assert f'<html lang="{language.replace("_", "-")}"' in html and "</html>" in html


def test_cldr_plural_forms_are_valid_for_every_language_babel_knows():
    from babel import localedata

    from postbode.i18n.plurals import CATEGORIES, CHECKED, evaluator

    languages = sorted({code.split("_")[0] for code in localedata.locale_identifiers()})
    assert len(languages) > 300
    for language in languages:
        locale = Locale.parse(language)
        forms = cldr_plural_forms(locale)
        choose = evaluator(forms.expression)
        by_category: dict[str, set[int]] = {}
        for n in CHECKED:
            by_category.setdefault(locale.plural_form(n), set()).add(choose(n))
        # one form per CLDR category, every form used, in CLDR's order
        assert all(len(found) == 1 for found in by_category.values()), language
        assert sorted(min(found) for found in by_category.values()) == list(range(forms.count)), language
        in_form_order = sorted(by_category, key=lambda category: min(by_category[category]))
        assert in_form_order == [c for c in CATEGORIES if c in by_category], language


def test_a_plural_header_other_than_cldr_is_refused(invoke, settings: Settings):
    path = catalogs.po_path(settings, "ar", catalogs.MESSAGES)
    text = path.read_text("utf-8")
    header = re.search(r'"Plural-Forms: [^\n]*\n', text)[0]
    swapped = ('"Plural-Forms: nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : '
               'n%100>=3 && n%100<=10 ? 3 : n%100>=0 && n%100<=2 ? 4 : 5);\\n"\n')
    path.write_text(text.replace(header, swapped), "utf-8")
    result = invoke("i18n", "compile")
    assert result.exit_code == 1
    assert f"ar/LC_MESSAGES/messages.po:{line_of(path, 'Plural-Forms')}" in result.output
    assert "for 11 it picks msgstr[5], CLDR msgstr[4]" in result.output


def test_a_plural_entry_missing_a_form_is_refused_as_msgfmt_does(invoke, settings: Settings):
    path = catalogs.po_path(settings, "ar", catalogs.MESSAGES)
    text = path.read_text("utf-8")
    last = re.search(r'msgstr\[5\] "[^"\n]*"\n', text)[0]
    path.write_text(text.replace(last, "", 1), "utf-8")
    assert "only 5 plural forms" in msgfmt_c(path).stderr
    result = invoke("i18n", "compile")
    assert result.exit_code == 1
    line = line_of(path, 'msgid "In deze nieuwsbrief één onderwerp:"')
    assert f"ar/LC_MESSAGES/messages.po:{line}" in result.output and "5 plural forms" in result.output


def test_an_arabic_catalog_with_the_standard_cldr_header_builds_the_right_forms(settings: Settings):
    path = catalogs.po_path(settings, "ar", catalogs.MESSAGES)
    text = path.read_text("utf-8")
    header = re.search(r'"Plural-Forms: [^\n]*\n', text)[0]
    standard = to_gettext(Locale.parse("ar").plural_form)  # as Babel's own CLDR data writes it
    path.write_text(text.replace(header, f'"Plural-Forms: {standard}\\n"\n'), "utf-8")
    assert msgfmt_c(path).returncode == 0
    catalogs.read_catalog(path)  # no complaint: the same forms as CLDR for 0–1000
    from postbode.i18n import load_translations

    singular, plural = "In deze nieuwsbrief één onderwerp:", "In deze nieuwsbrief %(count)s onderwerpen:"
    translations = load_translations("ar", settings)
    assert translations.ngettext(singular, plural, 11) % {"count": 11} == "في هذه النشرة 11 موضوعًا:"
    assert translations.ngettext(singular, plural, 100) % {"count": 100} == "في هذه النشرة 100 موضوع:"


# --- 4. stable files ------------------------------------------------------------

def shipped_po_files() -> list[Path]:
    return sorted((REPO / "locales").glob("*/LC_MESSAGES/*.po"))


def test_msgcat_rewrapping_then_update_changes_nothing(settings: Settings):
    paths = sorted(settings.locales_dir.glob("*/LC_MESSAGES/*.po"))
    for path in paths:
        tool("msgcat", "--width=79", "-o", str(path), str(path), check=True)
    rewrapped = {path: path.read_bytes() for path in paths}
    assert catalogs.update(settings) == []
    assert {path: path.read_bytes() for path in paths} == rewrapped


def test_update_leaves_a_translators_wrapping_of_an_untouched_entry_alone(project: Path, settings: Settings):
    path = catalogs.po_path(settings, "de", NEWSLETTER_ID)
    tool("msgcat", "--no-wrap", "-o", str(path), str(path), check=True)
    before = path.read_text("utf-8")
    edit_sample(project, "In september volgt", "In oktober volgt")
    extract_and_update(settings)
    after = path.read_text("utf-8")
    old = {(b.context, b.msgid): b.text for b in split_blocks(before)}
    new = {(b.context, b.msgid): b.text for b in split_blocks(after)}
    changed = {key for key in new if new[key] != old.get(key)}
    assert changed == {(f"{NEWSLETTER_ID}:sections.toerisme.body:2", CHANGED_TO), (None, "")}  # and the header
    assert re.search(r'msgctxt "2018-07-resultaten:intro"\nmsgid "[^\n]{100,}"\n', after)  # still unwrapped


def test_wrap_width_comes_from_postbode_toml(project: Path, settings: Settings):
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text("utf-8").replace('timezone = "Europe/Amsterdam"',
                                                    'timezone = "Europe/Amsterdam"\nwrap = 50'), "utf-8")
    from postbode.config import load_settings

    narrow = load_settings(toml, env={})
    assert narrow.i18n_wrap == 50 and settings.i18n_wrap == 79
    shutil.rmtree(narrow.locales_dir / "de")
    catalogs.init(narrow, "de")
    lines = catalogs.po_path(narrow, "de", NEWSLETTER_ID).read_text("utf-8").splitlines()
    strings = [line for line in lines if line.startswith('"') and " " in line]
    assert max(len(line) for line in strings) <= 52 < max(len(line) for line in
                                                           catalogs.po_path(settings, "en", NEWSLETTER_ID)
                                                           .read_text("utf-8").splitlines())


def test_references_name_fields_so_removing_a_section_touches_no_other_entry(project: Path,
                                                                             settings: Settings):
    path = catalogs.po_path(settings, "en", NEWSLETTER_ID)
    before = path.read_text("utf-8")
    assert f"#: {SAMPLE}:sections.toerisme.title\n" in before
    edit_sample(project, """  - id: aangifte
    title: "Waarom jonge slachtoffers zelden aangifte doen"
""", """  - id: aangifte
    title: "Waarom jonge slachtoffers zelden aangifte doen"
    # a comment that moves every later line
""")
    extract_and_update(settings)
    assert path.read_text("utf-8") == before
    assert "#: " in before and not re.search(r"#: newsletters/\S+\.yaml:\d+", before)


def test_obsolete_entries_are_wrapped_like_live_ones(project: Path, settings: Settings):
    edit_sample(project, DONATEURS, "")
    extract_and_update(settings)
    text = catalogs.po_path(settings, "de", NEWSLETTER_ID).read_text("utf-8")
    obsolete = [line for line in text.splitlines() if line.startswith("#~ ")]
    assert obsolete and max(len(line) for line in obsolete) > 60
    assert max(len(line) for line in obsolete) <= 79 + 3


def test_a_fresh_copy_is_already_in_the_state_update_produces(settings: Settings):
    extract_and_update(settings)
    compared = filecmp.dircmp(REPO / "locales", settings.locales_dir)
    differing = []

    def walk(cmp: filecmp.dircmp) -> None:
        differing.extend(f for f in cmp.diff_files if not f.endswith(".mo"))
        differing.extend(f for f in cmp.right_only if not f.endswith(".mo"))
        for sub in cmp.subdirs.values():
            walk(sub)

    walk(compared)
    assert differing == [], "run `python send.py i18n extract && python send.py i18n update`, commit locales/"


def test_generated_notes_are_in_the_source_language(settings: Settings):
    template = catalogs.read_catalog(catalogs.pot_path(settings, NEWSLETTER_ID), check=False)
    notes = " ".join(c for m in template for c in m.auto_comments)
    assert "Alinea 2 van 2" in notes and "Markdown: behoud" in notes
    assert "Paragraph" not in notes and "keep **bold**" not in notes


# --- 5. locale chains -------------------------------------------------------------

def test_language_and_script_come_before_the_bare_language(settings: Settings):
    serbian = settings.with_overrides(locales=(*settings.locales, "sr_Latn", "sr"))
    assert locale_chain("sr_Latn_RS", serbian) == ["sr_Latn", "sr", "nl"]
    assert locale_chain("sr_Cyrl_RS", serbian) == ["sr", "nl"]
    latin_only = settings.with_overrides(locales=(*settings.locales, "sr_Latn"))
    assert locale_chain("sr_Latn_RS", latin_only) == ["sr_Latn", "nl"]


def test_sr_latn_rs_falls_back_through_sr_latn_and_reports_it(invoke, project: Path, settings: Settings):
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text("utf-8").replace('locales = ["nl", "en", "de", "ar"]',
                                                    'locales = ["nl", "en", "de", "ar", "sr_Latn"]'), "utf-8")
    assert invoke("i18n", "init", "sr_Latn").exit_code == 0
    serbian = settings.with_overrides(locales=(*settings.locales, "sr_Latn"))
    translate(serbian, "sr_Latn", {"subject": "Rezultati leta 2018"})
    localized = localize(load_newsletter(project / SAMPLE), "sr_Latn_RS", serbian)
    assert (localized.language, localized.newsletter.subject) == ("sr_Latn", "Rezultati leta 2018")
    assert "intro" in localized.fallbacks and "subject" not in localized.fallbacks
    result = invoke("build", SAMPLE, "--locale", "sr_Latn_RS")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "sr_Latn_RS" in line)
    assert str(len(localized.fallbacks)) in row.split()


# --- Weblate's parser -------------------------------------------------------------

# Findings of pofilter that are not mistakes, and why.
FALSE_POSITIVES = {
    # The word in a mailto link's ?subject= is meant to be translated (afmelden → abmelden).
    ("xmltags", "Wil je je toch afmelden?"),
    # Arabic forms 0, 1 and 2 are used for one count each and spell it out, as msgfmt allows.
    ("printf", "In deze nieuwsbrief één onderwerp:"),
    ("printf", "%(count)s tekst is nog niet vertaald"),
    ("printf", "%(count)s probleem"),
}


POFILTER_TESTS = ("printf", "pythonbraceformat", "xmltags", "variables", "urls")


def pofilter(path: Path) -> list[tuple[str, str]]:
    """(test, msgid) for each finding of translate-toolkit's pofilter on a catalog."""
    program = Path(shutil.which("pofilter") or REPO / ".venv" / "bin" / "pofilter")
    if not program.exists():
        pytest.fail("pofilter is missing: install the test extra (pip install -e '.[test]')")
    tests = [arg for test in POFILTER_TESTS for arg in ("-t", test)]
    result = subprocess.run([str(program), *tests, "--nofuzzy", str(path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    findings = [(match[1], block.msgid or "") for block in split_blocks(result.stdout)
                for line in block.comments.get(" ", []) if (match := re.match(r"\(pofilter\) (\w+):", line))]
    assert len(findings) == result.stdout.count("(pofilter)"), result.stdout
    return findings


@pytest.mark.parametrize("path", shipped_po_files(), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_pofilter_finds_no_placeholder_or_tag_mistakes(path: Path):
    unexpected = [(test, msgid) for test, msgid in pofilter(path)
                  if not any(test == t and msgid.startswith(s) for t, s in FALSE_POSITIVES)]
    assert unexpected == []


def test_pofilter_agrees_about_a_lost_personal_field(personal: Settings):
    reviewed(personal, "de", {"sections.donateurs.title": "Danke, {vorname}"})
    findings = pofilter(catalogs.po_path(personal, "de", NEWSLETTER_ID))
    assert ("pythonbraceformat", "Dank, {first_name}") in findings


# --- 6. the preview shows work in progress ------------------------------------------

def test_preview_shows_an_incomplete_required_locale_marked_with_a_banner(web_settings: Settings):
    from postbode.web import create_app

    blank(web_settings, "en")  # en is 'require' in postbode.toml
    translate(web_settings, "en", {"subject": "Summer 2018 results"})
    newsletter = load_newsletter(web_settings.root / SAMPLE)
    with pytest.raises(TranslationError) as caught:
        localize(newsletter, "en", web_settings)  # sending refuses it, naming the .po lines
    path = catalogs.po_path(web_settings, "en", NEWSLETTER_ID)
    intro = line_of(path, f'msgctxt "{NEWSLETTER_ID}:intro"')
    assert any(f"{path}:{line}: intro: no translation yet" in str(caught.value) for line in (intro, intro + 1))
    client = create_app(web_settings, {"TESTING": True, "PREVIEW": True}).test_client()
    page = client.get(f"/preview/{NEWSLETTER_ID}?locale=en").get_data(as_text=True)
    assert "Nog niet te verzenden" in page
    assert "must be complete before sending" not in page  # no list of errors instead of the mail
    frame = client.get(f"/preview/{NEWSLETTER_ID}/frame?locale=en")
    assert frame.status_code == 200
    html = frame.get_data(as_text=True)
    assert 'lang="nl"' in html and '[lang="nl"]:not(html)' in html  # untranslated text, marked
    assert "Summer 2018 results" in html
    # the public web version is still refused, and not served from the preview's rendering
    assert client.get(f"/v/{NEWSLETTER_ID}/en").status_code == 404
    assert client.get(f"/v/{NEWSLETTER_ID}/de").status_code == 200
    complete = client.get(f"/preview/{NEWSLETTER_ID}?locale=de").get_data(as_text=True)
    assert "Nog niet te verzenden" not in complete  # de is 'fallback': sendable as it is


def test_a_renamed_section_with_a_reworded_title_gets_a_similar_suggestion(project: Path, settings: Settings):
    old = entry(settings, "de", "sections.toerisme.title")
    text = (project / SAMPLE).read_text("utf-8").replace("id: toerisme", "id: hotels")
    text = text.replace("sections.toerisme.", "sections.hotels.")
    (project / SAMPLE).write_text(text.replace("leert de signalen herkennen", "leert signalen herkennen"), "utf-8")
    extract_and_update(settings)
    new = entry(settings, "de", "sections.hotels.title")
    assert (new.id, new.string, new.fuzzy) == ("Hotel- en parkpersoneel leert signalen herkennen", old.string, True)
    assert new.previous_id == [old.id]
    text = catalogs.po_path(settings, "de", NEWSLETTER_ID).read_text("utf-8")
    assert f'#| msgctxt "{NEWSLETTER_ID}:sections.toerisme.title"\n#| msgid "{old.id}"' in text


def test_figures_with_the_same_value_need_an_id(project: Path, settings: Settings):
    from postbode.errors import ContentError

    edit_sample(project, '      - value: "3"\n', '      - value: "4"\n')
    with pytest.raises(ContentError) as caught:
        load_newsletter(project / SAMPLE)
    assert "also named '4'" in str(caught.value) and "id:" in str(caught.value)
    edit_sample(project, '      - value: "4"\n        kind: number\n        label: "sporen',
                '      - value: "4"\n        id: sporen\n        kind: number\n        label: "sporen')
    paths = [path for path, _ in load_newsletter(project / SAMPLE).text_fields()]
    assert "sections.verantwoording.figures.4.label" in paths
    assert "sections.verantwoording.figures.sporen.label" in paths


def test_extract_without_locations_writes_no_references(invoke, settings: Settings):
    assert invoke("i18n", "extract", "--no-location").exit_code == 0
    assert invoke("i18n", "update").exit_code == 0
    for path in [catalogs.pot_path(settings, NEWSLETTER_ID), catalogs.po_path(settings, "de", NEWSLETTER_ID)]:
        assert "\n#: " not in path.read_text("utf-8")
        assert msgfmt_c(path).returncode == 0 or path.suffix == ".pot"
