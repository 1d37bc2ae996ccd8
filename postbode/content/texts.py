"""What readers would see in the text: template syntax that would go out literally, plain-http links.

Newsletter text is data, so `{{ voornaam }}` would reach readers as written; a
writer who typed it wanted a personal field (`{voornaam}`). Links in the text
must be https (mailto allowed): mail clients warn about plain http.
"""
from __future__ import annotations

import re
from typing import Any

import yaml

from postbode.content.paths import Loc, text_locs, value_at
from postbode.content.yaml_positions import Tree
from postbode.markers import SHAPED

TEMPLATE_SYNTAX = re.compile(r"\{\{\s*(.*?)\s*\}\}|\{%.*?%\}", re.DOTALL)
HTTP_LINK = re.compile(r"(?<![\w.+-])http://[^\s)>\]]*[^\s)>\].,;:!?'\"]", re.IGNORECASE)
BLOCK_STYLES = ("|", ">")


def text_start(node: yaml.Node | None) -> int | None:
    """The 1-based line where a text value's own text begins (the line after `|` for a block)."""
    if node is None:
        return None
    return node.start_mark.line + 1 + (1 if getattr(node, "style", None) in BLOCK_STYLES else 0)


def text_lines(data: dict[str, Any], tree: Tree) -> dict[str, int]:
    """Text field path → the line its text begins on."""
    lines = {}
    for path, loc in text_locs(data):
        if (line := text_start(tree.nodes.get(loc))) is not None:
            lines[path] = line
    return lines


def check_markers(tree: Tree) -> None:
    """Add a problem for each value (text, link, anything) shaped like a personalisation marker.

    Postbode fills markers with each reader's personal links: one typed into a link
    would send every reader's token to that address.
    """
    for loc, node in tree.nodes.items():
        if not isinstance(node, yaml.ScalarNode) or not isinstance(node.value, str):
            continue
        for match in SHAPED.finditer(node.value):
            _add(tree, loc, node.value, match.start(),
                 f"'{match.group()}' is shaped like one of postbode's personalisation markers, "
                 "which postbode fills with each reader's personal links and name — remove it; "
                 "the mail adds the unsubscribe, preferences and web-version links itself")


def check_texts(data: dict[str, Any], tree: Tree) -> None:
    """Add a problem for each template tag or plain-http link in the text fields."""
    for path, loc in text_locs(data):
        text = value_at(data, loc)
        if not isinstance(text, str):
            continue
        if not _literal(data, loc):
            for match in TEMPLATE_SYNTAX.finditer(text):
                _add(tree, loc, text, match.start(), _template_message(match, loc))
        for match in HTTP_LINK.finditer(text):
            _add(tree, loc, text, match.start(),
                 f"the link {match.group()} uses plain http — write https://"
                 f"{match.group()[7:]} (mail clients warn about http links)")


def _template_message(match: re.Match[str], loc: Loc) -> str:
    inner = match.group(1)
    if inner is not None and re.fullmatch(r"[a-z][a-z0-9_]*", inner):
        hint = f"did you mean a personal field? write {{{inner}}}"
    else:
        hint = "personal fields are written {field} or {field|fallback}"
    where = "to the section" if loc[0] == "sections" else "at the top of the file"
    return (f"'{match.group()}' would reach readers exactly as written — {hint}, "
            f"or add literal: true {where} to show such text as it is")


def _literal(data: dict[str, Any], loc: Loc) -> bool:
    """`literal: true` on the newsletter or on the section this text belongs to."""
    if data.get("literal") is True:
        return True
    if loc[0] == "sections" and isinstance(loc[1], int):
        section = data["sections"][loc[1]]
        return isinstance(section, dict) and section.get("literal") is True
    return False


def _add(tree: Tree, loc: Loc, text: str, offset: int, message: str) -> None:
    node = tree.nodes.get(loc)
    start = text_start(node)
    mark = node.start_mark if node is not None else None
    if mark is not None and start is not None:
        # point at the line of the match itself (exact for `|` blocks, the usual body style)
        line = start + text[:offset].count("\n") - 1
        mark = yaml.Mark(mark.name, mark.index, line, 0 if line != mark.line else mark.column, None, None)
    tree.add(mark, loc, message)


