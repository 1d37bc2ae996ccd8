"""A newsletter's text as catalog entries: the Babel extractor and the field ⇄ entry mapping.

One entry per text field, `msgctxt "<newsletter-id>:<field.path>"`. A field
of several paragraphs (a Markdown body) becomes one entry per paragraph,
numbered from 1: `<newsletter-id>:sections.toerisme.body:2`. The runtime
(`postbode.i18n`) uses `entries` and `join_paragraphs` from here, so
extraction and translation always cut a text the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Collection, Iterator

from postbode.content import Newsletter, load_newsletter

PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
BLOCK_LINE = re.compile(r"\s*([-*+>|#]|\d+[.)])\s")


@dataclass(frozen=True)
class Entry:
    """One catalog entry of a newsletter."""

    field: str      # text field path, e.g. "sections.toerisme.body"
    key: str        # field path plus paragraph number where split, e.g. "sections.toerisme.body:2"
    context: str    # msgctxt: "<newsletter-id>:<key>"
    source: str     # the source-language text of this entry
    line: int | None
    note: str | None


def split_paragraphs(text: str) -> list[str]:
    """The paragraphs of a text (one item when it has no blank line)."""
    stripped = text.strip()
    return [_unwrapped(p.strip()) for p in PARAGRAPH_BREAK.split(stripped)] if stripped else [""]


def _unwrapped(paragraph: str) -> str:
    """A plain paragraph on one line (translators need not keep the YAML's line wrapping).

    Lists, quotes, tables and headings keep their lines: there a line break means something.
    """
    lines = paragraph.splitlines()
    if any(BLOCK_LINE.match(line) for line in lines) or any(line.endswith("  ") for line in lines):
        return paragraph
    return " ".join(line.strip() for line in lines)


def paragraph_lines(text: str) -> list[int]:
    """The line offset of each paragraph within a text."""
    body = text.strip()
    starts = [0, *(match.end() for match in PARAGRAPH_BREAK.finditer(body))]
    return [body.count("\n", 0, start) for start in starts]


def join_paragraphs(paragraphs: list[str]) -> str:
    return "\n\n".join(paragraphs)


def entries(newsletter: Newsletter) -> list[Entry]:
    """Every catalog entry of a newsletter, in document order."""
    result = []
    for field, text in newsletter.text_fields():
        line = newsletter.field_lines.get(field)
        note = newsletter.note_for(field)
        paragraphs = split_paragraphs(text)
        if not paragraphs[0]:
            continue
        if len(paragraphs) == 1:
            result.append(Entry(field, field, f"{newsletter.id}:{field}", paragraphs[0], line, note))
            continue
        starts = paragraph_lines(text)
        for number, paragraph in enumerate(paragraphs, 1):
            at = None if line is None else line + 1 + starts[number - 1]
            key = f"{field}:{number}"
            result.append(Entry(field, key, f"{newsletter.id}:{key}", paragraph, at, note))
    return result


# Fields rendered as Markdown (the templates' `markdown` filter); their entries carry
# Weblate's `md-text` flag and postbode's Markdown checks.
MARKDOWN_FIELDS = re.compile(r"^(intro|sign_off|acknowledgement\.text|sections\.[^.]+\.body)$")
# Generated notes are in the source language, like the writers' own translator notes.
PARAGRAPH_NOTE = "Alinea {number} van {count} van {field}."
MARKDOWN_NOTE = "Markdown: behoud **vet**, *cursief*, [linktekst](url) en opsommingstekens."


def is_markdown(entry: Entry) -> bool:
    return bool(MARKDOWN_FIELDS.match(entry.field))


def comments_for(entry: Entry, paragraphs: int) -> list[str]:
    """The `#.` comments a translator sees above an entry."""
    comments = []
    if entry.key != entry.field:
        number = entry.key.rsplit(":", 1)[1]
        comments.append(PARAGRAPH_NOTE.format(number=number, count=paragraphs, field=entry.field))
    if is_markdown(entry):
        comments.append(MARKDOWN_NOTE)
    if entry.note:
        comments.append(entry.note)
    return comments


def commented_entries(newsletter: Newsletter) -> list[tuple[Entry, list[str]]]:
    """Every entry of a newsletter with its translator comments."""
    all_entries = entries(newsletter)
    counts: dict[str, int] = {}
    for entry in all_entries:
        counts[entry.field] = counts.get(entry.field, 0) + 1
    return [(entry, comments_for(entry, counts[entry.field])) for entry in all_entries]


def newsletter_domain(path: Path) -> str:
    """The catalog domain of a newsletter file: its id."""
    return load_newsletter(path).id


def extract_newsletter(fileobj: IO[bytes], keywords: Collection[str], comment_tags: Collection[str],
                       options: dict[str, Any]) -> Iterator[tuple[int, str, tuple[str, str], list[str]]]:
    """Babel extractor for newsletter YAML (entry point `postbode_newsletter` in babel.cfg terms).

    Yields `pgettext(context, text)` messages with the translator note as comment.
    """
    name = getattr(fileobj, "name", None)
    if not name:
        raise ValueError("the newsletter extractor needs a file on disk (it reads its images too)")
    for entry, comments in commented_entries(load_newsletter(Path(name))):
        yield entry.line or 1, "pgettext", (entry.context, entry.source), comments
