"""Checks on translations, as strict as `msgfmt -c`, plus the mail's own.

msgfmt -c refuses a catalog with a message defined twice (live or `#~`), a
translation that loses or adds a placeholder, or a Plural-Forms header that
does not fit; postbode refuses the same, and also a Plural-Forms expression
that picks other forms than CLDR for its language. Newsletter text (Markdown)
must keep the source's link targets, have no broken link syntax and no HTML
the source lacks; a template string with inline HTML must keep its tags.
Each problem names the .po file and the line of the entry.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from markdown_it import MarkdownIt

from postbode.errors import Problem
from postbode.i18n import plurals
from postbode.i18n.extract import MARKDOWN_FIELDS
from postbode.i18n.pofile import duplicates, entries_of

# %(name)s and %s (Python/Jinja), {name} (str.format, and the personal fields of newsletter
# text, `{voornaam}` or `{voornaam|lezer}`: the field must stay, its fallback text is translated).
PERCENT = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa%]")
BRACE = re.compile(r"(?<!\{)\{(\w*)(?:[!:|][^{}]*)?\}(?!\})")
TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9]*)\b[^>]*>")
# Markdown link syntax left over after parsing: a link markdown-it could not read.
BROKEN_LINK = re.compile(r"\]\s*\(|\[[^\]]*\]\(|<https?://")
MARKDOWN_FLAG = "md-text"

_markdown = MarkdownIt("commonmark")


def placeholders(text: str, message: Message) -> Counter[str]:
    """The placeholders of a text, as the entry's format flags define them."""
    found: Counter[str] = Counter()
    if _percent_format(message):
        found.update(f"%({m.group(1)}){m.group(0)[-1]}" if m.group(1) else m.group(0)
                     for m in PERCENT.finditer(text) if m.group(0) != "%%")
    if _brace_format(message):
        found.update(f"{{{m.group(1)}}}" for m in BRACE.finditer(text))
    return found


def _percent_format(message: Message) -> bool:
    return "no-python-format" not in message.flags and (
        "python-format" in message.flags or bool(PERCENT.search(_ids(message)[0])))


def _brace_format(message: Message) -> bool:
    return "no-python-brace-format" not in message.flags and (
        "python-brace-format" in message.flags or bool(BRACE.search(" ".join(_ids(message)))))


def _ids(message: Message) -> list[str]:
    return [message.id] if isinstance(message.id, str) else list(message.id)


def _strings(message: Message) -> list[str]:
    return [message.string or ""] if isinstance(message.string, str) or message.string is None \
        else list(message.string)


def entry_problems(message: Message, lenient_forms: frozenset[int] = frozenset()) -> list[str]:
    """What is wrong with one translated entry (empty when it is fine or not translated).

    `lenient_forms` are plural forms used for a single count, which may leave
    the count out, as msgfmt allows.
    """
    if not message.id or message.fuzzy:
        return []
    ids = _ids(message)
    wanted = placeholders(ids[-1], message) | placeholders(ids[0], message)
    problems = []
    for index, string in enumerate(_strings(message)):
        if not string:
            continue
        problems += _placeholder_problems(string, wanted, message, index in lenient_forms and len(ids) > 1)
        problems += _newline_problems(ids[0], string)
        if is_markdown(message):
            problems += markdown_problems(ids[0] if len(ids) == 1 else ids[-1], string)
        elif "<" in ids[0]:
            problems += _tag_problems(ids[0], string)
    return list(dict.fromkeys(problems))


def _newline_problems(source: str, string: str) -> list[str]:
    """msgfmt -c: a translation begins and ends with a line break exactly when its source does."""
    problems = []
    for end, test in (("begin", str.startswith), ("end", str.endswith)):
        if test(source, "\n") != test(string, "\n"):
            problems.append(f"the source and the translation must both {end} with a line break, or neither")
    return problems


def is_markdown(message: Message) -> bool:
    """Newsletter Markdown: flagged md-text, or a Markdown field by its context (GNU tools drop the flag)."""
    field = (message.context or "").split(":", 1)[-1].rsplit(":", 1)
    name = field[0] if len(field) == 2 and field[1].isdigit() else ":".join(field)
    return MARKDOWN_FLAG in message.flags or bool(message.context and MARKDOWN_FIELDS.match(name))


def _placeholder_problems(string: str, wanted: Counter[str], message: Message, lenient: bool) -> list[str]:
    got = placeholders(string, message)
    problems = []
    added = sorted(set(got) - set(wanted))
    if added:
        problems.append(f"the translation has {', '.join(added)}, which the source does not have")
    lost = sorted(set(wanted) - set(got))
    if lost and not lenient:
        problems.append(f"the translation lost {', '.join(lost)}; keep every placeholder of the source "
                        "exactly as written")
    return problems


def links(text: str) -> Counter[str]:
    """The link and image targets of Markdown text."""
    found: Counter[str] = Counter()
    for token in _markdown.parse(text):
        for child in token.children or []:
            if child.type in ("link_open", "image"):
                found[str(child.attrGet("href") or child.attrGet("src") or "")] += 1
    return found


def markdown_problems(source: str, translation: str) -> list[str]:
    """A translated Markdown paragraph keeps the source's links, has no broken ones and no new HTML."""
    problems = []
    want, got = set(links(source)), set(links(translation))
    if got - want and want - got:
        problems.append(f"the translation changes the link target {', '.join(sorted(want - got))} to "
                        f"{', '.join(sorted(got - want))}; keep the link targets of the source")
    elif got - want:
        problems.append(f"the translation links to {', '.join(sorted(got - want))}, which the source "
                        "does not; keep the link targets of the source")
    elif want - got:
        problems.append(f"the translation lost the link to {', '.join(sorted(want - got))}; keep "
                        "[link text](url) with the same url")
    if _broken_links(translation) > _broken_links(source):
        problems.append("the translation has broken link syntax; write links as [link text](url)")
    new_tags = sorted(set(_tags(translation)) - set(_tags(source)))
    if new_tags:
        problems.append(f"the translation adds HTML ({', '.join(f'<{t}>' for t in new_tags)}); "
                        "newsletter text is Markdown: remove the HTML")
    return problems


def _broken_links(text: str) -> int:
    """Link syntax that markdown-it left as plain text."""
    return sum(len(BROKEN_LINK.findall(child.content)) for token in _markdown.parse(text)
               for child in token.children or [] if child.type == "text")


def _tags(text: str) -> list[str]:
    return [m.group(1).lower() for m in TAG.finditer(text)]


def _tag_problems(source: str, translation: str) -> list[str]:
    want, got = Counter(_tags(source)), Counter(_tags(translation))
    if want == got:
        return []
    return [f"the translation must keep the HTML tags of the source ({tag_list(source)}), each as often"]


def tag_list(text: str) -> str:
    """`<a>, <bdi>`: the tags of a text, for messages and translator notes."""
    return ", ".join(f"<{t}>" for t in dict.fromkeys(_tags(text)) if not t.startswith("/"))


def lenient_forms(catalog: Catalog) -> frozenset[int]:
    """Plural forms the catalog's header uses for a single count (0–1000)."""
    try:
        choose = plurals.evaluator(catalog.plural_expr)
    except (ValueError, SyntaxError):
        return frozenset()
    used = Counter(choose(n) for n in plurals.CHECKED)
    return frozenset(form for form, times in used.items() if times == 1)


def message_problems(path: Path, catalog: Catalog) -> list[Problem]:
    """Every translated entry's problems, at the entry's line."""
    lenient = lenient_forms(catalog)
    return [Problem(str(path), message.lineno, None, message.context or "", f"{text} (msgid {_shown(message)})")
            for message in catalog if message.id for text in entry_problems(message, lenient)]


def form_count_problems(path: Path, text: str, count: int) -> list[Problem]:
    """msgfmt: a plural entry has one msgstr[n] per form of the header, no fewer (Babel pads silently)."""
    problems = []
    for block in entries_of(text):
        forms = sum(1 for key in block.strings if key.startswith("msgstr["))
        if "msgid_plural" in block.strings and not block.obsolete and forms != count:
            problems.append(Problem(str(path), block.key_line, None, block.context or "",
                                    f"this entry has {forms} plural forms, the Plural-Forms header {count}; "
                                    f"write msgstr[0] to msgstr[{count - 1}]"))
    return problems


def _shown(message: Message) -> str:
    text = _ids(message)[0]
    return repr(text if len(text) <= 60 else text[:57] + "...")


def duplicate_problems(path: Path, text: str) -> list[Problem]:
    """Messages defined twice (msgfmt: 'duplicate message definition')."""
    return [Problem(str(path), again.key_line, None, again.context or "",
                    f"duplicate message definition (first defined at line {first.key_line}); "
                    f"delete one of them — `python send.py i18n update` does that for you")
            for first, again in duplicates(text)]


def plural_header_problems(path: Path, catalog: Catalog, line: int | None) -> list[Problem]:
    """A Plural-Forms header that is not valid, or chooses other forms than CLDR for its language."""
    if catalog.locale is None:
        return []
    try:
        plurals.evaluator(catalog.plural_expr)
    except (ValueError, SyntaxError) as err:
        return [Problem(str(path), line, None, "Plural-Forms",
                        f"the plural expression {catalog.plural_expr!r} is not valid ({err})")]
    expected = plurals.cldr_plural_forms(Locale.parse(str(catalog.locale)))
    if plurals.same_forms(catalog.plural_expr, catalog.num_plurals, expected):
        return []
    return [Problem(str(path), line, None, "Plural-Forms", _plural_advice(catalog, expected))]


def _plural_advice(catalog: Catalog, expected: plurals.PluralForms) -> str:
    if catalog.num_plurals != expected.count:
        said = f"nplurals={catalog.num_plurals} is wrong for {catalog.locale} (CLDR has {expected.count})"
    else:
        n, given, wanted = plurals.first_difference(catalog.plural_expr, expected) or (0, 0, 0)
        said = (f"the plural expression picks other forms than CLDR for {catalog.locale} "
                f"(for {n} it picks msgstr[{given}], CLDR msgstr[{wanted}])")
    return (f"{said}; use the header `Plural-Forms: {expected.header}` and put each translation "
            "in the form CLDR's order gives it")
