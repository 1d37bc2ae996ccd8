"""Catalog files: read and check .po files, extract .pot templates, init, update, compile, status.

Templates and Python strings live in the `messages` domain; each newsletter's
text lives in a domain named after the newsletter's id. Files:
`locales/<domain>.pot` and `locales/<language>/LC_MESSAGES/<domain>.po`.
"""
from __future__ import annotations

import datetime as dt
import gettext
import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

from babel import Locale, UnknownLocaleError
from babel.messages.catalog import PYTHON_FORMAT, Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir, extract_from_file
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.plurals import get_plural
from babel.messages.pofile import PoFileError, normalize, read_po, unescape, write_po

from postbode.config import Settings
from postbode.errors import Problem, TranslationError
from postbode.i18n.extract import extract_newsletter, newsletter_domain

MESSAGES = "messages"
COMMENT_TAGS = ("Translators:",)
WIDTH = 76
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

    With `check`, also refuse a Plural-Forms header that does not fit the
    language and translations whose placeholders or plural forms are wrong.
    """
    try:
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=locale, abort_invalid=True)
    except FileNotFoundError:
        raise TranslationError(Problem(str(path), None, None, "", "file not found")) from None
    except PoFileError as err:
        message = str(err).rsplit(" on ", 1)[0]
        if "num_plurals" in message:
            raise TranslationError(_plural_count_problem(path, err.catalog, err.lineno + 1)) from err
        raise TranslationError(Problem(
            str(path), err.lineno + 1, None, "",
            f"not a valid .po file: {message}; fix that line (msgfmt --check {path.name} shows it too)",
        )) from err
    except (ValueError, UnicodeDecodeError) as err:
        line = _line_of(path, "Plural-Forms") if "plural" in str(err).lower() or "int" in str(err) else None
        raise TranslationError(Problem(
            str(path), line, None, "", f"cannot read this catalog ({err}); fix the header or the encoding",
        )) from err
    mark_format_flags(catalog)
    _restore_previous_ids(catalog)
    if check:
        problems = [*_plural_header_problems(path, catalog), *_message_problems(path, catalog)]
        if problems:
            raise TranslationError(problems, summary=f"{path}: {len(problems)} problem(s) in this catalog")
    return catalog


def _plural_count_problem(path: Path, catalog: Catalog, line: int) -> Problem:
    expected = get_plural(catalog.locale) if catalog.locale else None
    advice = f"for {catalog.locale} use: {expected.plural_forms}" if expected else "fix the header"
    return Problem(str(path), _line_of(path, "Plural-Forms"), None, "Plural-Forms",
                   f"nplurals={catalog.num_plurals} but the entry at line {line} has more plural forms; {advice}")


def _plural_header_problems(path: Path, catalog: Catalog) -> list[Problem]:
    if catalog.locale is None:
        return []
    line = _line_of(path, "Plural-Forms")
    try:
        gettext.c2py(catalog.plural_expr)
    except (ValueError, SyntaxError) as err:
        return [Problem(str(path), line, None, "Plural-Forms",
                        f"the plural expression {catalog.plural_expr!r} is not valid ({err})")]
    expected = get_plural(catalog.locale)
    if catalog.num_plurals != expected.num_plurals:
        return [Problem(str(path), line, None, "Plural-Forms",
                        f"nplurals={catalog.num_plurals} is wrong for {catalog.locale}; "
                        f"use: {expected.plural_forms}")]
    return []


def _message_problems(path: Path, catalog: Catalog) -> list[Problem]:
    problems = []
    for message, errors in catalog.check():
        if message.fuzzy or not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        for error in errors:
            problems.append(Problem(str(path), message.lineno, None, message.context or "",
                                    f"{error} (msgid {msgid!r}); make the translation use the "
                                    "same %(name)s placeholders as the source"))
    return problems


def _restore_previous_ids(catalog: Catalog) -> None:
    """Babel reads `#| msgid` lines as user comments; turn them back into the previous msgid."""
    for message in [*catalog, *catalog.obsolete.values()]:
        previous = [c[1:].strip() for c in message.user_comments if c.startswith("|")]
        if not previous:
            continue
        message.user_comments = [c for c in message.user_comments if not c.startswith("|")]
        ids: list[str] = []
        for part in previous:
            for keyword in ("msgid_plural ", "msgid "):
                if part.startswith(keyword):
                    ids.append("")
                    part = part[len(keyword):].strip()
                    break
            if ids and len(part) >= 2 and part[0] == part[-1] == '"':
                ids[-1] += unescape(part)
        message.previous_id = ids


def _previous_lines(message: Message, width: int) -> list[str]:
    """GNU gettext's `#| msgid` block for a fuzzy entry's previous source text."""
    lines = []
    for keyword, text in zip(("msgid", "msgid_plural"), message.previous_id):
        parts = normalize(text, width=width).splitlines()
        lines.append(f"#| {keyword} {parts[0]}")
        lines += [f"#| {part}" for part in parts[1:]]
    return lines


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
    """The .mo bytes of a catalog (fuzzy entries left out, so they fall back)."""
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


@lru_cache(maxsize=256)
def _mo_bytes(path: str, mtime_ns: int, size: int) -> bytes:
    file = Path(path)
    if file.suffix == ".mo":
        return file.read_bytes()
    return compile_mo(read_catalog(file))


def load_mo(settings: Settings, language: str, domain: str) -> bytes | None:
    """Compiled catalog bytes for a language and domain, from the .po (compiled in memory) or a .mo."""
    po = po_path(settings, language, domain)
    for candidate in (po, po.with_suffix(".mo")):
        try:
            stat = candidate.stat()
        except FileNotFoundError:
            continue
        return _mo_bytes(str(candidate), stat.st_mtime_ns, stat.st_size)
    return None


# --- writing ----------------------------------------------------------------

def write_catalog(path: Path, catalog: Catalog, *, template: bool = False) -> bool:
    """Write a .po/.pot file if its content changed (dates aside); True when written."""
    mark_format_flags(catalog)
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=WIDTH, include_previous=not template, ignore_obsolete=False,
             sort_output=False)
    data = _fix_previous_blocks(buffer.getvalue(), catalog) if not template else buffer.getvalue()
    if path.exists() and _without_dates(path.read_bytes()) == _without_dates(data):
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return True


def _fix_previous_blocks(data: bytes, catalog: Catalog) -> bytes:
    """Rewrite Babel's `#|` blocks (it wraps them as prose) in GNU gettext's form."""
    blocks = [_previous_lines(m, WIDTH) for m in catalog if m.id and m.previous_id]
    lines = data.decode(catalog.charset or "utf-8").split("\n")
    out: list[str] = []
    index = 0
    for line in lines:
        if line.startswith("#| "):
            if not out or not out[-1].startswith("#| "):
                out.extend(blocks[index] if index < len(blocks) else [])
                index += 1
            continue
        out.append(line)
    return "\n".join(out).encode(catalog.charset or "utf-8")


def _without_dates(data: bytes) -> list[bytes]:
    return [line for line in data.splitlines()
            if not line.startswith((b'"POT-Creation-Date:', b'"PO-Revision-Date:'))]


def new_template(domain: str, title: str) -> Catalog:
    return Catalog(domain=domain, project="postbode", version="1", charset="utf-8", fuzzy=False,
                   header_comment=CATALOG_HEADER.format(title=title),
                   msgid_bugs_address="nieuwsbrief@example.org")


# --- extract ----------------------------------------------------------------

@dataclass(frozen=True)
class ExtractResult:
    written: list[Path]
    unchanged: list[Path]


def extract(settings: Settings) -> ExtractResult:
    """Write locales/messages.pot (templates, Python) and one .pot per newsletter."""
    written, unchanged = [], []

    def save(domain: str, catalog: Catalog) -> None:
        path = pot_path(settings, domain)
        (written if write_catalog(path, catalog, template=True) else unchanged).append(path)

    save(MESSAGES, extract_messages(settings))
    for source in newsletter_files(settings):
        domain = newsletter_domain(source)
        catalog = new_template(domain, f"Text of the newsletter {domain}.")
        for lineno, msgid, comments, context in extract_from_file(
                extract_newsletter, source, keywords=DEFAULT_KEYWORDS):
            catalog.add(msgid, None, [(_relative(source, settings.root), lineno)],
                        auto_comments=comments, context=context, flags=_content_flags(msgid))
        save(domain, catalog)
    return ExtractResult(written, unchanged)


def newsletter_files(settings: Settings) -> list[Path]:
    return sorted([*settings.newsletters_dir.glob("*.yaml"), *settings.newsletters_dir.glob("*.yml")])


def _content_flags(msgid: str) -> list[str]:
    """Newsletter text is never %-formatted: say so where a '%' would make tools guess otherwise."""
    flags = []
    if PYTHON_FORMAT.search(msgid):
        flags.append("no-python-format")
    if "{" in msgid and Message(msgid).python_brace_format:
        flags.append("no-python-brace-format")
    return flags


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def extract_messages(settings: Settings) -> Catalog:
    """The `messages` template: strings of the templates (and Python code) mapped in babel.cfg."""
    catalog = new_template(MESSAGES, "Texts of the mail templates and web pages.")
    method_map, options_map = _mapping(settings)
    for filename, lineno, message, comments, context in extract_from_dir(
            settings.root, method_map, options_map, keywords=DEFAULT_KEYWORDS,
            comment_tags=COMMENT_TAGS, strip_comment_tags=True):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


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
        write_catalog(path, _catalog_from_template(settings, domain, locale))
        created.append(path)
    return created


def _require_templates(settings: Settings) -> list[str]:
    domains = template_domains(settings)
    if not domains:
        raise TranslationError(Problem(str(settings.locales_dir), None, None, "",
                                       "no .pot files yet; run `python send.py i18n extract` first"))
    return domains


def _catalog_from_template(settings: Settings, domain: str, locale: Locale) -> Catalog:
    catalog = read_catalog(pot_path(settings, domain), check=False, locale=locale)
    catalog.domain = domain
    catalog.revision_date = dt.datetime.now(dt.timezone.utc)
    catalog.fuzzy = False
    return catalog


def update(settings: Settings) -> list[Path]:
    """Merge every .pot into every language's .po: changed source → fuzzy, removed → obsolete."""
    changed = []
    for language in target_languages(settings):
        locale = parse_language(language)
        for domain in _require_templates(settings):
            path = po_path(settings, language, domain)
            template = read_catalog(pot_path(settings, domain), check=False)
            if not path.exists():
                catalog = _catalog_from_template(settings, domain, locale)
            else:
                catalog = read_catalog(path, check=False)
                merge(catalog, template, by_context=domain != MESSAGES)
            if write_catalog(path, catalog):
                changed.append(path)
    return changed


def merge(catalog: Catalog, template: Catalog, *, by_context: bool) -> None:
    """Update `catalog` from `template`, keeping the previous source of entries that became fuzzy.

    Newsletter entries are matched by their context (the field path), never by
    similar-looking text of another field.
    """
    previous: dict[object, list[str]] = {
        (_first(m.id), m.context): list(m.previous_id) for m in catalog if m.id and m.fuzzy and m.previous_id}
    if by_context:
        previous.update(_rekey_by_context(catalog, template))
    catalog.update(template, no_fuzzy_matching=by_context, update_header_comment=True)
    for message in catalog:
        key = (_first(message.id), message.context)
        if key in previous and message.fuzzy and not message.previous_id:
            message.previous_id = previous[key]


def _first(msgid: object) -> str:
    return msgid if isinstance(msgid, str) else msgid[0]


def _rekey_by_context(catalog: Catalog, template: Catalog) -> dict[object, list[str]]:
    """Move old entries whose source text changed (or whose paragraph moved) to the new key."""
    old_by_context: dict[str, Message] = {m.context: m for m in catalog if m.id and m.context}
    old_by_text: dict[tuple[str, str], Message] = {
        (_field_of(m.context), m.id): m for m in catalog if m.id and m.context and isinstance(m.id, str)}
    used: set[int] = set()
    moves: list[tuple[Message, Message, bool]] = []
    wanted = [m for m in template if m.id and m.context and catalog.get(m.id, m.context) is None]
    for new in wanted:
        old = old_by_text.get((_field_of(new.context), new.id))
        if old is not None and catalog.get(old.id, old.context) is not None and \
                template.get(old.id, old.context) is None and id(old) not in used:
            moves.append((old, new, False))
            used.add(id(old))
    for new in wanted:
        if any(n is new for _, n, _ in moves):
            continue
        old = old_by_context.get(new.context)
        if old is not None and id(old) not in used and template.get(old.id, old.context) is None:
            moves.append((old, new, True))
            used.add(id(old))
    previous = {}
    for old, new, changed in moves:
        catalog.delete(old.id, old.context)
    for old, new, changed in moves:
        flags = set(old.flags) | ({"fuzzy"} if changed else set())
        catalog.add(new.id, old.string, old.locations, flags=flags, auto_comments=old.auto_comments,
                    user_comments=old.user_comments, context=new.context)
        if changed:
            previous[(_first(new.id), new.context)] = [old.id] if isinstance(old.id, str) else list(old.id)
    return previous


def _field_of(context: str) -> str:
    """`id:sections.a.body:2` → `id:sections.a.body` (the field, without the paragraph number)."""
    head, _, tail = context.rpartition(":")
    return head if tail.isdigit() and head.count(":") >= 1 else context


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
