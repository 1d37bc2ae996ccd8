"""Catalog files: read and check .po files, extract .pot templates, init, update, compile, status.

Templates and Python strings live in the `messages` domain; each newsletter's
text lives in a domain named after the newsletter's id. Files:
`locales/<domain>.pot` and `locales/<language>/LC_MESSAGES/<domain>.po`.
"""
from __future__ import annotations

import datetime as dt
import difflib
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import PYTHON_FORMAT, Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, normalize, read_po, write_po

from postbode.audience.segments import load_lists
from postbode.config import Settings
from postbode.content import Newsletter, load_newsletter
from postbode.errors import Problem, TranslationError
from postbode.i18n import checks, plurals
from postbode.i18n.extract import commented_entries, is_markdown
from postbode.i18n.pofile import Block, join_blocks, keep_unchanged, split_blocks

MESSAGES = "messages"
COMMENT_TAGS = ("Translators:",)
WIDTH = 79  # GNU gettext's and Poedit's; postbode.toml's [i18n] wrap changes it
# Flags that come from the template on every update (a translator's own flags stay).
MANAGED_FLAGS = {"python-format", "no-python-format", "python-brace-format", "no-python-brace-format",
                 checks.MARKDOWN_FLAG}
HTML_NOTE = "Behoud de HTML-tags {tags} met hun attributen; vertaal alleen de tekst ertussen."
CATALOG_HEADER = (
    "# {title}\n"
    "# Translate the .po files made from this template; see locales/README.md.\n"
    "#"
)


# --- where the files are ----------------------------------------------------

def pot_path(settings: Settings, domain: str) -> Path:
    return settings.locales_dir / f"{domain}.pot"


def po_path(settings: Settings, language: str, domain: str) -> Path:
    return settings.locales_dir / language / "LC_MESSAGES" / f"{domain}.po"


def target_languages(settings: Settings) -> list[str]:
    """Languages to translate into: those in postbode.toml and those with a folder, minus the source."""
    found = [p.parent.name for p in sorted(settings.locales_dir.glob("*/LC_MESSAGES")) if p.is_dir()]
    languages = dict.fromkeys([*settings.locales, *found])
    languages.pop(settings.source_locale, None)
    return list(languages)


def template_domains(settings: Settings) -> list[str]:
    """Domains with a .pot file, `messages` first."""
    domains = sorted(p.stem for p in settings.locales_dir.glob("*.pot"))
    return sorted(domains, key=lambda d: d != MESSAGES)


def parse_language(language: str) -> Locale:
    """A Locale for a catalog folder name, or a clear error."""
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError) as err:
        raise TranslationError([], summary=f"{language!r} is not a known language code ({err}); "
                               "use a code such as en, de, ar or pt_BR") from err


# --- reading and checking ---------------------------------------------------

def _line_of(path: Path, needle: str) -> int | None:
    try:
        for number, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), 1):
            if needle in line:
                return number
    except OSError:
        return None
    return None


def read_catalog(path: Path, *, check: bool = True, locale: Locale | None = None) -> Catalog:
    """Read a .po or .pot file; raise TranslationError naming file and line for any problem.

    With `check`, also refuse what `msgfmt -c` refuses (a message defined twice,
    a lost or added placeholder, a Plural-Forms header that does not fit) and
    what the mail cannot take (see postbode.i18n.checks).
    """
    text = _read_text(path)
    try:
        catalog = read_po(io.BytesIO(text.encode("utf-8")), locale=locale, abort_invalid=True)
    except PoFileError as err:
        message = str(err).rsplit(" on ", 1)[0]
        if "num_plurals" in message:
            raise TranslationError(_plural_count_problem(path, err.catalog, err.lineno + 1)) from err
        raise TranslationError(Problem(
            str(path), err.lineno + 1, None, "",
            f"not a valid .po file: {message}; fix that line (msgfmt --check {path.name} shows it too)",
        )) from err
    except ValueError as err:
        line = _line_of(path, "Plural-Forms") if "plural" in str(err).lower() or "int" in str(err) else None
        raise TranslationError(Problem(
            str(path), line, None, "", f"cannot read this catalog ({err}); fix the header or the encoding",
        )) from err
    mark_format_flags(catalog)
    _restore_from_text(catalog, split_blocks(text))
    if check:
        problems = catalog_problems(path, catalog, text)
        if problems:
            raise TranslationError(problems, summary=f"{path}: {len(problems)} problem(s) in this catalog")
    return catalog


# A catalog larger than this is not a translation of newsletters (the largest real ones are
# a few hundred kB); reading and checking a 50 MB file would keep `check` busy for minutes.
MAX_CATALOG_BYTES = 5 * 1024 * 1024


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_CATALOG_BYTES:
            raise TranslationError(Problem(str(path), None, None, "", (
                f"the catalog is {size / 1024 / 1024:.1f} MB, more than the {MAX_CATALOG_BYTES // 1024 // 1024} MB "
                "a translation catalog may be; check that this is the right file (msgcat can split "
                "or clean it)")))
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise TranslationError(Problem(str(path), None, None, "", "file not found")) from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise TranslationError(Problem(str(path), line, None, "", "not UTF-8; save the file as UTF-8 "
                                       "(Poedit and Weblate do)")) from err


def catalog_problems(path: Path, catalog: Catalog, text: str) -> list[Problem]:
    """Everything msgfmt -c (and the mail) would refuse in a catalog, at its lines."""
    return [*header_problems(path, catalog, text), *checks.message_problems(path, catalog)]


def header_problems(path: Path, catalog: Catalog, text: str) -> list[Problem]:
    """The problems that break a whole catalog (not one entry)."""
    return [*checks.duplicate_problems(path, text),
            *checks.plural_header_problems(path, catalog, _line_of(path, "Plural-Forms")),
            *checks.form_count_problems(path, text, catalog.num_plurals)]


def _plural_count_problem(path: Path, catalog: Catalog, line: int) -> Problem:
    expected = plurals.cldr_plural_forms(catalog.locale) if catalog.locale else None
    advice = f"for {catalog.locale} use: {expected.header}" if expected else "fix the header"
    return Problem(str(path), _line_of(path, "Plural-Forms"), None, "Plural-Forms",
                   f"nplurals={catalog.num_plurals} but the entry at line {line} has more plural forms; {advice}")


def _key(message: Message) -> tuple[str | None, str]:
    return message.context, _first(message.id)


def _restore_from_text(catalog: Catalog, blocks: list[Block]) -> None:
    """What Babel's reader drops: `#|` previous texts and field-path references."""
    by_key = {(b.context, b.msgid): b for b in blocks if b.msgid}
    for message in [*catalog, *catalog.obsolete.values()]:
        block = by_key.get(_key(message)) if message.id else None
        message.user_comments = [c for c in message.user_comments if not c.startswith("|")]
        message.previous_context = None
        if block is None:
            continue
        if block.previous.get("msgid") is not None:
            message.previous_id = [block.previous[k] for k in ("msgid", "msgid_plural") if k in block.previous]
            message.previous_context = block.previous.get("msgctxt")
        if block.references:
            message.locations = [_location(token) for token in block.references]


def _location(token: str) -> tuple[str, int | None]:
    """`templates/email.html:12` → (file, 12); `newsletters/x.yaml:subject` stays whole."""
    name, _, line = token.rpartition(":")
    return (name, int(line)) if name and line.isdigit() and not name.endswith(".yaml") else (token, None)


def mark_format_flags(catalog: Catalog) -> None:
    """Honour explicit no-python-format flags (Babel guesses python-format from any '% x')."""
    for message in catalog:
        if "no-python-format" in message.flags:
            message.flags.discard("python-format")
        if "no-python-brace-format" in message.flags:
            message.flags.discard("python-brace-format")


def is_translated(message: Message) -> bool:
    """A usable translation: every form filled in and not fuzzy."""
    if message.fuzzy:
        return False
    strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
    return bool(strings) and all(strings)


def compile_mo(catalog: Catalog) -> bytes:
    """The .mo bytes of a catalog; fuzzy and half-translated plural entries left out (of `catalog` too), so they fall back."""
    for message in [m for m in catalog if m.id and not isinstance(m.id, str) and not is_translated(m)]:
        catalog.delete(message.id, message.context)  # else a missing form would show as empty text
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


@dataclass(frozen=True)
class Checked:
    """A catalog compiled for use, without the entries that failed a check."""

    mo: bytes
    refused: dict[str, list[Problem]]  # msgctxt → why its translation is not used


@lru_cache(maxsize=256)
def _checked(path: str, mtime_ns: int, size: int, strict: bool) -> Checked:
    file = Path(path)
    if file.suffix == ".mo":
        return Checked(file.read_bytes(), {})
    if strict:
        return Checked(compile_mo(read_catalog(file)), {})
    catalog = read_catalog(file, check=False)
    text = _read_text(file)
    broken = header_problems(file, catalog, text)
    if broken:
        raise TranslationError(broken, summary=f"{file}: {len(broken)} problem(s) in this catalog")
    refused: dict[str, list[Problem]] = {}
    for problem in checks.message_problems(file, catalog):
        refused.setdefault(problem.field, []).append(problem)
    for message in list(catalog):
        if message.id and (message.context or "") in refused:
            catalog.delete(message.id, message.context)
    return Checked(compile_mo(catalog), refused)


def load_checked(settings: Settings, language: str, domain: str, *, strict: bool = True) -> Checked | None:
    """A language's compiled catalog, from the .po (compiled in memory) or a .mo; None when none.

    `strict` refuses a catalog with any problem; otherwise entries that fail a
    check are left out (they fall back) and listed in `refused`.
    """
    po = po_path(settings, language, domain)
    for candidate in (po, po.with_suffix(".mo")):
        try:
            stat = candidate.stat()
        except FileNotFoundError:
            continue
        return _checked(str(candidate), stat.st_mtime_ns, stat.st_size, strict)
    return None


def load_mo(settings: Settings, language: str, domain: str) -> bytes | None:
    """Compiled catalog bytes for a language and domain; any problem in it is an error."""
    checked = load_checked(settings, language, domain)
    return None if checked is None else checked.mo


# --- writing ----------------------------------------------------------------

def write_catalog(path: Path, catalog: Catalog, *, width: int = WIDTH, template: bool = False) -> bool:
    """Write a .po/.pot file if its content changed (dates aside); True when written.

    Entries whose meaning did not change keep the bytes the file had, however
    a translator's tool wrapped them.
    """
    mark_format_flags(catalog)
    data = render_catalog(catalog, width, template=template)
    old = path.read_text("utf-8") if path.exists() else None
    if old is not None:
        data = keep_unchanged(old, data)
        if _without_dates(old) == _without_dates(data):
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data.encode("utf-8"))
    tmp.replace(path)
    return True


def render_catalog(catalog: Catalog, width: int, *, template: bool = False) -> str:
    """The text of a catalog as GNU gettext writes it: `#|` previous texts, `#~` at full width."""
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=width, include_previous=False, ignore_obsolete=True, sort_output=False)
    blocks = [b.text for b in split_blocks(buffer.getvalue().decode("utf-8"))]
    if not template:
        previous = {_key(m): _previous_lines(m, width) for m in catalog if m.id and m.previous_id}
        blocks = [_with_previous(text, previous) for text in blocks]
        blocks += [_obsolete_text(m, catalog.num_plurals, width) for m in catalog.obsolete.values()]
    return join_blocks(blocks)


def _with_previous(text: str, previous: dict[tuple[str | None, str], list[str]]) -> str:
    """An entry's text with its `#|` lines before its msgctxt/msgid."""
    block = split_blocks(text)[0]
    lines = previous.get((block.context, block.msgid or ""))
    if not lines:
        return text
    own = text.split("\n")
    at = next(i for i, line in enumerate(own) if line.startswith(("msgctxt ", "msgid ")))
    return "\n".join([*own[:at], *lines, *own[at:]])


def _string_lines(keyword: str, text: str, width: int, prefix: str) -> list[str]:
    """`keyword "text"`, wrapped as GNU gettext does, each line behind `prefix`."""
    parts = normalize(text, width=max(width - len(prefix), 0) if width else 0).split("\n")
    return [f"{prefix}{keyword} {parts[0]}", *(f"{prefix}{part}" for part in parts[1:])]


def _previous_lines(message: Message, width: int) -> list[str]:
    """GNU gettext's `#|` block for a fuzzy entry's previous context and source text."""
    lines = []
    if getattr(message, "previous_context", None):
        lines += _string_lines("msgctxt", message.previous_context, width, "#| ")
    for keyword, text in zip(("msgid", "msgid_plural"), message.previous_id):
        lines += _string_lines(keyword, text, width, "#| ")
    return lines


def _obsolete_text(message: Message, num_plurals: int, width: int) -> str:
    """An obsolete entry as `#~` lines, wrapped like live ones."""
    lines = [f"# {c}".rstrip() for c in message.user_comments]
    if message.context:
        lines += _string_lines("msgctxt", message.context, width, "#~ ")
    ids = [message.id] if isinstance(message.id, str) else list(message.id)
    lines += _string_lines("msgid", ids[0], width, "#~ ")
    if len(ids) > 1:
        lines += _string_lines("msgid_plural", ids[1], width, "#~ ")
        strings = list(message.string or ()) + [""] * num_plurals
        for index in range(num_plurals):
            lines += _string_lines(f"msgstr[{index}]", strings[index], width, "#~ ")
    else:
        lines += _string_lines("msgstr", message.string or "", width, "#~ ")
    return "\n".join(lines)


def _without_dates(data: str) -> list[str]:
    return [line for line in data.splitlines()
            if not line.startswith(('"POT-Creation-Date:', '"PO-Revision-Date:'))]


def new_template(settings: Settings, domain: str, title: str) -> Catalog:
    return Catalog(domain=domain, project="postbode", version="1", charset="utf-8", fuzzy=False,
                   header_comment=CATALOG_HEADER.format(title=title),
                   msgid_bugs_address=settings.reply_to or settings.sender_email)


# --- extract ----------------------------------------------------------------

@dataclass(frozen=True)
class ExtractResult:
    written: list[Path]
    unchanged: list[Path]


def extract(settings: Settings, *, locations: bool = True) -> ExtractResult:
    """Write locales/messages.pot (templates, Python) and one .pot per newsletter.

    References are `file:line` for templates and `newsletter.yaml:<field path>`
    for newsletter text (stable when other sections change); none without `locations`.
    """
    written, unchanged = [], []

    def save(domain: str, catalog: Catalog) -> None:
        path = pot_path(settings, domain)
        changed = write_catalog(path, catalog, width=settings.i18n_wrap, template=True)
        (written if changed else unchanged).append(path)

    save(MESSAGES, extract_messages(settings, locations=locations))
    for source in newsletter_files(settings):
        newsletter = load_newsletter(source)
        save(newsletter.id, newsletter_template(settings, newsletter, source, locations=locations))
    return ExtractResult(written, unchanged)


def newsletter_template(settings: Settings, newsletter: Newsletter, source: Path, *, locations: bool = True) -> Catalog:
    """The .pot of one newsletter: an entry per text field (or paragraph), flagged md-text where Markdown."""
    catalog = new_template(settings, newsletter.id, f"Text of the newsletter {newsletter.id}.")
    shown = _relative(source, settings.root)
    for entry, comments in commented_entries(newsletter):
        where = [(f"{shown}:{entry.key}", None)] if locations else []
        flags = _content_flags(entry.source) + ([checks.MARKDOWN_FLAG] if is_markdown(entry) else [])
        catalog.add(entry.source, None, where, auto_comments=comments, context=entry.context, flags=flags)
    return catalog


def newsletter_files(settings: Settings) -> list[Path]:
    return sorted([*settings.newsletters_dir.glob("*.yaml"), *settings.newsletters_dir.glob("*.yml")])


def _content_flags(msgid: str) -> list[str]:
    """Newsletter text is never %-formatted; its `{field}` placeholders are brace-format."""
    flags = []
    if PYTHON_FORMAT.search(msgid):
        flags.append("no-python-format")
    if checks.BRACE.search(msgid):
        flags.append("python-brace-format")
    elif "{" in msgid and Message(msgid).python_brace_format:
        flags.append("no-python-brace-format")
    return flags


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def extract_messages(settings: Settings, *, locations: bool = True) -> Catalog:
    """The `messages` template: strings of the templates (and Python code) mapped in babel.cfg."""
    catalog = new_template(settings, MESSAGES, "Texts of the mail templates and web pages.")
    method_map, options_map = _mapping(settings)
    for filename, lineno, message, comments, context in extract_from_dir(
            settings.root, method_map, options_map, keywords=DEFAULT_KEYWORDS,
            comment_tags=COMMENT_TAGS, strip_comment_tags=True):
        tags = checks.tag_list(" ".join([message] if isinstance(message, str) else message))
        notes = [*comments, HTML_NOTE.format(tags=tags)] if tags else comments
        catalog.add(message, None, [(filename, lineno)] if locations else [], auto_comments=notes,
                    context=context)
    _add_list_texts(settings, catalog, locations)
    for message in catalog:  # one note per entry, however often the string occurs
        message.auto_comments = list(dict.fromkeys(message.auto_comments))
    return catalog


# segments.yaml texts readers see: (ListSpec attribute, msgctxt, note for translators)
LIST_TEXTS = (
    ("reason", "list reason", "Why members of the list {name} get mail (segments.yaml); it "
                              "completes the footer's sentence \"You receive this e-mail from … ___.\""),
    ("consent", "list consent", "What a person agrees to when signing up for the list {name} "
                                "(segments.yaml), shown next to its tick box on the sign-up form."),
)


def _add_list_texts(settings: Settings, catalog: Catalog, locations: bool) -> None:
    """The reason and consent text of each list in segments.yaml (when the project has one)."""
    path = Path(settings.segments_file)
    if not path.is_file():
        return
    shown = _relative(path, settings.root)
    for spec in load_lists(settings).values():
        for attribute, context, note in LIST_TEXTS:
            text = getattr(spec, attribute)
            if text:
                where = [(shown, _line_of(path, text) or 1)] if locations else []
                catalog.add(text, None, where, auto_comments=[note.format(name=spec.name)],
                            context=context)


def _mapping(settings: Settings) -> tuple[list, dict]:
    cfg = settings.root / "babel.cfg"
    if not cfg.is_file():
        raise TranslationError(Problem(str(cfg), None, None, "",
                                       "babel.cfg is missing; it says which files hold texts to translate"))
    with cfg.open(encoding="utf-8") as fh:
        return parse_mapping_cfg(fh, str(cfg))


# --- init, update -----------------------------------------------------------

def init(settings: Settings, language: str) -> list[Path]:
    """Start catalogs for a new language from every .pot; existing .po files are left alone."""
    locale = parse_language(language)
    language = str(locale)  # the folder name Babel and the runtime look for: pt-BR → pt_BR
    if locale.language == Locale.parse(settings.source_locale).language:
        raise TranslationError([], summary=f"{language!r} is the source language: its text is the YAML "
                               "and the templates, not a catalog; start a target language instead")
    created = []
    for domain in _require_templates(settings):
        path = po_path(settings, language, domain)
        if path.exists():
            continue
        write_catalog(path, catalog_from_template(settings, domain, locale), width=settings.i18n_wrap)
        created.append(path)
    return created


def _require_templates(settings: Settings) -> list[str]:
    domains = template_domains(settings)
    if not domains:
        raise TranslationError(Problem(str(settings.locales_dir), None, None, "",
                                       "no .pot files yet; run `python send.py i18n extract` first"))
    return domains


def catalog_from_template(settings: Settings, domain: str, locale: Locale) -> Catalog:
    """A new, empty catalog of one language: CLDR plural forms, headers filled in."""
    template = read_catalog(pot_path(settings, domain), check=False)
    forms = plurals.cldr_plural_forms(locale)
    catalog = Catalog(locale=locale, domain=domain, project=template.project, version=template.version,
                      charset="utf-8", fuzzy=False, header_comment=template.header_comment,
                      msgid_bugs_address=template.msgid_bugs_address, creation_date=template.creation_date,
                      revision_date=dt.datetime.now(dt.timezone.utc),
                      language_team=f"{locale.english_name} <{template.msgid_bugs_address}>")
    catalog.mime_headers = [("Plural-Forms", forms.header)]
    for message in template:
        if message.id:
            empty = ("",) * forms.count if isinstance(message.id, (list, tuple)) else ""
            catalog.add(message.id, empty, message.locations, flags=message.flags,
                        auto_comments=message.auto_comments, context=message.context)
    return catalog


def update(settings: Settings) -> list[Path]:
    """Merge every .pot into every language's .po, as msgmerge does; untouched entries stay byte-identical."""
    changed = []
    for language in target_languages(settings):
        locale = parse_language(language)
        for domain in _require_templates(settings):
            path = po_path(settings, language, domain)
            template = read_catalog(pot_path(settings, domain), check=False)
            if not path.exists():
                catalog = catalog_from_template(settings, domain, locale)
            else:
                catalog = read_catalog(path, check=False)
                merge(catalog, template, by_context=domain != MESSAGES)
            if write_catalog(path, catalog, width=settings.i18n_wrap):
                changed.append(path)
    return changed


# --- merging ----------------------------------------------------------------

def merge(catalog: Catalog, template: Catalog, *, by_context: bool) -> None:
    """Update `catalog` from `template` as msgmerge does.

    An obsolete entry whose msgctxt+msgid come back is revived; a changed,
    renamed or moved entry keeps its translation as a fuzzy suggestion (with
    `#| msgctxt`/`#| msgid`); an untranslated entry never becomes fuzzy.
    Newsletter entries are matched by field first, so a translation never
    lands on another field's text while that field's own text is there.
    """
    _revive(catalog, template)
    previous = {_key(m): (list(m.previous_id), getattr(m, "previous_context", None))
                for m in catalog if m.id and m.fuzzy and m.previous_id}
    if by_context:
        previous.update(_rekey_by_context(catalog, template))
    old_flags = {_key(m): set(m.flags) for m in catalog if m.id}
    catalog.update(template, no_fuzzy_matching=by_context, update_header_comment=True)
    live = {_key(m) for m in catalog if m.id}
    for key in [k for k, m in catalog.obsolete.items() if _key(m) in live]:
        del catalog.obsolete[key]  # msgfmt refuses a message that is both live and obsolete
    for message in catalog:
        if message.id:
            _settle(message, previous.get(_key(message)), old_flags.get(_key(message)), template)


def _settle(message: Message, previous: tuple[list[str], str | None] | None, old_flags: set[str] | None,
            template: Catalog) -> None:
    """Previous texts back in place, format flags from the template, no fuzzy without a translation."""
    if previous is not None and message.fuzzy and not message.previous_id:
        message.previous_id = previous[0]
    message.previous_context = previous[1] if previous is not None and message.fuzzy else None
    wanted = template.get(message.id, message.context)
    if wanted is not None:
        kept = (old_flags or set()) - MANAGED_FLAGS
        message.flags = {flag for flag in message.flags if flag not in MANAGED_FLAGS or flag in wanted.flags}
        message.flags |= kept | (set(wanted.flags) & MANAGED_FLAGS)
    strings = message.string if isinstance(message.string, (list, tuple)) else [message.string]
    if message.fuzzy and not any(strings):
        message.flags.discard("fuzzy")
        message.previous_id = []
        message.previous_context = None


def _revive(catalog: Catalog, template: Catalog) -> None:
    """Obsolete entries whose msgctxt+msgid are wanted again become live, translation and all."""
    wanted = {_key(m) for m in template if m.id}
    for key, message in list(catalog.obsolete.items()):
        if _key(message) in wanted and catalog.get(message.id, message.context) is None:
            del catalog.obsolete[key]
            catalog[message.id] = message


def _first(msgid: object) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


Previous = dict[tuple[str | None, str], tuple[list[str], str | None]]


def _rekey_by_context(catalog: Catalog, template: Catalog) -> Previous:
    """Move old newsletter entries to their new key: moved paragraphs, changed text, renamed fields.

    In order: the same text in the same field (a paragraph moved: not fuzzy);
    the same field with changed text; the same text under another field (a
    renamed section); similar text in a field of the same kind. All but the
    first become fuzzy.
    """
    leftovers = [m for m in catalog if m.id and m.context and template.get(m.id, m.context) is None]
    wanted = [m for m in template if m.id and m.context and catalog.get(m.id, m.context) is None]
    moves: list[tuple[Message, Message, bool]] = []
    for matcher, fuzzy in ((_same_field_same_text, False), (_same_field, True),
                           (_same_text, True), (_similar_text, True)):
        for new in [n for n in wanted if not any(n is m for _, m, _ in moves)]:
            old = matcher(new, [o for o in leftovers if not any(o is m for m, _, _ in moves)])
            if old is not None:
                moves.append((old, new, fuzzy))
    return _apply_moves(catalog, moves)


def _apply_moves(catalog: Catalog, moves: list[tuple[Message, Message, bool]]) -> Previous:
    previous: Previous = {}
    for old, _, _ in moves:
        catalog.delete(old.id, old.context)
    for old, new, fuzzy in moves:
        flags = set(old.flags) | ({"fuzzy"} if fuzzy else set())
        catalog.add(new.id, old.string, old.locations, flags=flags, auto_comments=old.auto_comments,
                    user_comments=old.user_comments, context=new.context)
        if fuzzy:
            ids = [old.id] if isinstance(old.id, str) else list(old.id)
            previous[(new.context, _first(new.id))] = (ids, old.context if old.context != new.context else None)
    return previous


def _same_field_same_text(new: Message, olds: list[Message]) -> Message | None:
    return next((o for o in olds if _field_of(o.context) == _field_of(new.context) and o.id == new.id), None)


def _same_field(new: Message, olds: list[Message]) -> Message | None:
    return next((o for o in olds if o.context == new.context), None)


def _same_text(new: Message, olds: list[Message]) -> Message | None:
    return next((o for o in olds if o.id == new.id and _kind(o.context) == _kind(new.context)), None)


def _similar_text(new: Message, olds: list[Message]) -> Message | None:
    """The most similar old text of a field of the same kind (a title for a title), if close enough."""
    candidates = {_first(o.id): o for o in olds if o.string and _kind(o.context) == _kind(new.context)}
    close = difflib.get_close_matches(_first(new.id), list(candidates), n=1, cutoff=0.7)
    return candidates[close[0]] if close else None


def _field_of(context: str) -> str:
    """`id:sections.a.body:2` → `id:sections.a.body` (the field, without the paragraph number)."""
    head, _, tail = context.rpartition(":")
    return head if tail.isdigit() and head.count(":") >= 1 else context


def _kind(context: str) -> str:
    """`id:sections.a.body:2` → `body`: what sort of text a field holds."""
    return _field_of(context).rsplit(".", 1)[-1].rsplit(":", 1)[-1]


# --- compile ----------------------------------------------------------------

@dataclass(frozen=True)
class Compiled:
    po: Path
    mo: Path
    warnings: tuple[str, ...]


def compile_all(settings: Settings) -> list[Compiled]:
    """Check every .po, then write every .mo; a broken catalog stops them all, listing every one."""
    problems: list[Problem] = []
    catalogs: list[tuple[Path, Catalog]] = []
    for path in all_po_files(settings):
        try:
            catalogs.append((path, read_catalog(path)))
        except TranslationError as err:
            problems += err.problems
    if problems:
        raise TranslationError(problems, summary="some catalogs are broken; no .mo file was written. "
                                                 "Fix these lines and compile again:")
    results = []
    for path, catalog in catalogs:
        warnings = []
        if catalog.fuzzy:
            warnings.append(f"{path}: the header is marked fuzzy; compiled anyway. Remove "
                            "'#, fuzzy' above the first msgid once the catalog is reviewed.")
        mo = path.with_suffix(".mo")
        mo.write_bytes(compile_mo(catalog))
        results.append(Compiled(path, mo, tuple(warnings)))
    return results


def all_po_files(settings: Settings) -> list[Path]:
    return sorted(settings.locales_dir.glob("*/LC_MESSAGES/*.po"))


# --- status -----------------------------------------------------------------

@dataclass(frozen=True)
class CatalogStatus:
    language: str
    domain: str
    translated: int
    fuzzy: int
    untranslated: int

    @property
    def total(self) -> int:
        return self.translated + self.fuzzy + self.untranslated

    @property
    def percent(self) -> float:
        return round(100 * self.translated / self.total, 1) if self.total else 100.0

    def as_dict(self) -> dict:
        return {"locale": self.language, "catalog": self.domain, "translated": self.translated,
                "fuzzy": self.fuzzy, "untranslated": self.untranslated, "total": self.total,
                "percent": self.percent}


def status(settings: Settings) -> list[CatalogStatus]:
    """Per language × catalog: translated, fuzzy (not counted as translated), untranslated."""
    rows = []
    for language in target_languages(settings):
        for domain in _require_templates(settings):
            template = read_catalog(pot_path(settings, domain), check=False)
            path = po_path(settings, language, domain)
            catalog = read_catalog(path, check=False) if path.exists() else None
            rows.append(_count(language, domain, template, catalog))
    return rows


def _count(language: str, domain: str, template: Catalog, catalog: Catalog | None) -> CatalogStatus:
    translated = fuzzy = untranslated = 0
    for wanted in _entries(template):
        found = catalog.get(wanted.id, wanted.context) if catalog is not None else None
        if found is not None and is_translated(found):
            translated += 1
        elif found is not None and found.fuzzy:
            fuzzy += 1
        else:
            untranslated += 1
    return CatalogStatus(language, domain, translated, fuzzy, untranslated)


def _entries(catalog: Catalog) -> Iterable[Message]:
    return (m for m in catalog if m.id)
