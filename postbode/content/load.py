"""Reading one newsletter file: YAML with positions → validated `Newsletter`, every problem at once."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from postbode.content import hints, texts
from postbode.content.model import Newsletter
from postbode.content.numbers import SOURCE_LOCALE
from postbode.content.paths import Loc, display, item_key, text_locs
from postbode.content.yaml_positions import Tree, compose, read_text
from postbode.errors import ContentError, Problem


def load_newsletter(path: Path, source_locale: str = SOURCE_LOCALE) -> Newsletter:
    """Read and validate one newsletter file; raise ContentError listing every problem.

    Figure values are read in `source_locale`'s notation (the language the file is written in).
    """
    path = Path(path)
    shown = display(path)
    text = read_text(path, shown)
    tree = compose(text, shown)
    data = tree.data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        tree.add(tree.marks.get(()), (), f"the file holds {kind}, not fields — write it as "
                 "'id: …', 'date: …', 'subject: …' lines (see newsletters/2018-07-resultaten.yaml)")
        raise ContentError(tree.problems, summary=_summary(shown, tree.problems))
    for internal in ("source_path", "field_lines", "audience_lines", "text_lines"):
        if internal in data:
            tree.add(tree.key_marks.get((internal,)), (internal,), hints.unknown_field((internal,)))
            del data[internal]
    newsletter = _validate(data, path, tree, source_locale)
    _check_section_ids(data, tree)
    _check_item_keys(data, tree)
    _check_translator_notes(data, tree)
    texts.check_texts(data, tree)
    texts.check_markers(tree)
    if tree.problems or newsletter is None:
        raise ContentError(sorted(tree.problems, key=_order), summary=_summary(shown, tree.problems))
    lines = {p: tree.marks[loc].line + 1 for p, loc in text_locs(data) if loc in tree.marks}
    return newsletter.model_copy(update={"source_path": path, "field_lines": lines,
                                         "audience_lines": _audience_lines(newsletter, tree),
                                         "text_lines": texts.text_lines(data, tree)})


def _audience_lines(newsletter: Newsletter, tree: Tree) -> dict[str, int]:
    """The line of each segment name under a section's `audience:`."""
    lines = {}
    for i, section in enumerate(newsletter.sections):
        for n, _ in enumerate(section.audience):
            mark = tree.marks.get(("sections", i, "audience", n)) or tree.marks.get(("sections", i, "audience"))
            if mark is not None:
                lines[f"sections.{section.id}.audience.{n}"] = mark.line + 1
    return lines


def _validate(data: dict[str, Any], path: Path, tree: Tree,
              source_locale: str = SOURCE_LOCALE) -> Newsletter | None:
    try:
        return Newsletter.model_validate(data, context={"folder": path.parent,
                                                        "source_locale": source_locale})
    except ValidationError as err:
        errors = err.errors()
        misspelt = {hints.suggested(tuple(e["loc"])) for e in errors if e["type"] == "extra_forbidden"}
        for error in errors:
            loc = tuple(error["loc"])
            if any(loc[:n] in tree.reported for n in range(len(loc) + 1)):
                continue
            if error["type"] == "missing" and loc in misspelt:
                continue  # the unknown field's "did you mean" already says it
            mark = tree.key_marks.get(loc) if error["type"] == "extra_forbidden" else _mark_for(loc, tree)
            tree.add(mark, loc, hints.message(error, loc, tree.nodes.get(loc)))
        return None


def _mark_for(loc: Loc, tree: Tree) -> yaml.Mark | None:
    """The position of a value, or of its closest parent when the value is missing."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in tree.marks:
            return tree.marks[loc[:n]]
    return None


def _check_section_ids(data: dict[str, Any], tree: Tree) -> None:
    sections = data.get("sections")
    first: dict[str, int] = {}
    for i, section in enumerate(sections if isinstance(sections, list) else []):
        sid = section.get("id") if isinstance(section, dict) else None
        if not isinstance(sid, str):
            continue
        loc = ("sections", i, "id")
        if sid in first:
            tree.add(tree.marks.get(loc), loc, f"section id '{sid}' is already used by sections"
                     f"[{first[sid]}] — every section needs its own id")
        else:
            first[sid] = i


def _check_item_keys(data: dict[str, Any], tree: Tree) -> None:
    """Two figures of a section (or two logos) need different keys, or their translations mix."""
    sections = data.get("sections")
    parents = [(("sections", i), s) for i, s in enumerate(sections if isinstance(sections, list) else [])]
    parents.append((("acknowledgement",), data.get("acknowledgement")))
    for loc, parent in parents:
        for name in ("figures", "logos"):
            items = parent.get(name) if isinstance(parent, dict) else None
            seen: set[str] = set()
            for n, item in enumerate(items if isinstance(items, list) else []):
                if not isinstance(item, dict):
                    continue
                key = item_key(item, name)
                if key in seen:
                    where = loc + (name, n)
                    tree.add(tree.marks.get(where), where, f"another {name[:-1]} here is also named "
                             f"'{key}' — give each an id, e.g. id: {name[:-1]}-{n + 1}")
                seen.add(key)


def _check_translator_notes(data: dict[str, Any], tree: Tree) -> None:
    notes = data.get("translator_notes")
    if not isinstance(notes, dict):
        return
    paths = [path for path, _ in text_locs(data)]
    for key in notes:
        if key in paths:
            continue
        close = difflib.get_close_matches(key, paths, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "use a text field path such as sections.<section-id>.title"
        loc = ("translator_notes", key)
        tree.add(tree.key_marks.get(loc), loc, f"no text field '{key}' to attach this note to — {hint}")


def _order(problem: Problem) -> tuple[int, int]:
    return problem.line or 0, problem.column or 0


def _summary(shown: str, problems: list[Problem]) -> str:
    count = len(problems)
    return f"{shown}: {count} problem{'s' if count != 1 else ''} — nothing was written"


