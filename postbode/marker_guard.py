"""Markers are postbode's alone: templates and catalogs that contain one are refused.

Message fills `__PB_PREFERENCES_URL__` and its kin with each reader's personal
links. A translation or template string holding such a marker would carry every
reader's token wherever its text points (a translator's link to another site),
so `check`, `build` and `send` refuse it, naming the file and line. Newsletter
text is checked where it is read (`content.texts`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Iterator

from postbode.config import Settings
from postbode.errors import Problem, TranslationError
from postbode.markers import SHAPED

TEMPLATE_SUFFIXES = (".html", ".txt")
# A .po line that holds (part of) a string: `msgid "…"`, `msgstr[0] "…"`, or a continuation `"…"`.
PO_STRING = re.compile(r'^\s*(?:(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+)?"(.*)"\s*$')
ADVICE = ("is shaped like one of postbode's personalisation markers, which postbode fills with "
          "each reader's personal links and name — remove it; the mail adds those links itself")


def check(settings: Settings, newsletter_id: str) -> None:
    """Raise TranslationError listing every marker in the templates and this issue's catalogs."""
    problems = [*template_problems(settings.templates_dir), *catalog_problems(
        catalog_files(settings, ["messages", newsletter_id]))]
    if problems:
        raise TranslationError(problems, summary=f"{len(problems)} marker"
                               f"{'s' if len(problems) != 1 else ''} in templates or catalogs "
                               "— nothing was built or sent")


def catalog_files(settings: Settings, domains: Iterable[str]) -> list[Path]:
    """The .pot and every language's .po of these domains that exist."""
    folder = settings.locales_dir
    found = []
    for domain in domains:
        found += [p for p in [folder / f"{domain}.pot"] if p.is_file()]
        found += sorted(folder.glob(f"*/LC_MESSAGES/{domain}.po"))
    return found


def template_problems(folder: Path) -> list[Problem]:
    """A problem per template line with a marker typed into it (templates use `markers.*`)."""
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in TEMPLATE_SUFFIXES and p.is_file()):
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in SHAPED.finditer(line):
                problems.append(Problem(str(path), number, match.start() + 1, None,
                                        f"'{match.group()}' {ADVICE}"))
    return problems


def catalog_problems(paths: Iterable[Path]) -> list[Problem]:
    """A problem per .po string (msgid or msgstr, continuation lines joined) holding a marker."""
    problems = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        for line, keyword, value in po_strings(text):
            for match in SHAPED.finditer(value):
                problems.append(Problem(str(path), line, None, keyword,
                                        f"'{match.group()}' {ADVICE}"))
    return problems


def po_strings(text: str) -> Iterator[tuple[int, str, str]]:
    """(first line, keyword, joined text) of every string in a .po file; comments are skipped."""
    current: list = []
    for number, line in enumerate(text.splitlines(), 1):
        found = PO_STRING.match(line)
        if found is None or (found.group(1) is None and not current):
            if current:
                yield tuple(current)  # type: ignore[misc]
            current = []
            continue
        if found.group(1) is not None:
            if current:
                yield tuple(current)  # type: ignore[misc]
            current = [number, found.group(1), ""]
        current[2] += found.group(2)
    if current:
        yield tuple(current)  # type: ignore[misc]
