"""A YAML reader that keeps the position of every value.

`read_text(path, shown)` refuses what is not YAML text (too big, binary, not
UTF-8, empty); `compose(text, shown)` turns it into plain data without YAML's
implicit guesses (quoted and block text stay text) and a `Tree` that remembers
the line and column of every value and key, so a later check can point at it.
Nothing here knows what a newsletter is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from postbode.content.paths import Loc, dotted
from postbode.errors import ContentError, Problem

MAX_BYTES = 1_000_000
EMPTY_HINT = "start from newsletters/2018-07-resultaten.yaml"


def fail(shown: str, message: str, line: int | None = None, column: int | None = None) -> ContentError:
    """One located problem as an error to raise."""
    return ContentError([Problem(shown, line, column, "", message)])


def read_text(path: Path, shown: str, *, max_bytes: int = MAX_BYTES, empty_hint: str = EMPTY_HINT) -> str:
    """The file as text, refusing what is not a newsletter: too big, binary, not UTF-8, empty."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise fail(shown, f"the file is {size / 1_000_000:.1f} MB; a newsletter may be at most "
                        f"{max_bytes // 1_000_000} MB — is this the right file? Put images in "
                        "newsletters/images/ and refer to them by name")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise fail(shown, "file not found — check the path (newsletters live in newsletters/)") from None
    except IsADirectoryError:
        raise fail(shown, "is a folder — give the path of one newsletter .yaml file") from None
    except OSError as err:
        raise fail(shown, f"cannot be read ({err.strerror}) — check its permissions") from err
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise fail(shown, "is saved as UTF-16 — save it as UTF-8", 1, 1)
    if b"\x00" in raw:
        line, column = position(raw, raw.index(b"\x00"))
        raise fail(shown, "is a binary file, not YAML text — is this the right file?", line, column)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line, column = position(raw, err.start)
        raise fail(shown, f"is not valid UTF-8 (byte 0x{raw[err.start]:02X}) — save the file as UTF-8 "
                    "(in most editors: Save As… → Encoding: UTF-8)", line, column) from None
    if not text.strip():
        raise fail(shown, f"the file is empty — {empty_hint}")
    return text


def position(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of a byte offset."""
    line_start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, offset - line_start + 1

# --- YAML to plain data, remembering where every value came from ------------

STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass
class Tree:
    """Plain data from the YAML file, with the position of every value and key."""

    shown: str
    data: Any = None
    marks: dict[Loc, yaml.Mark] = field(default_factory=dict)
    key_marks: dict[Loc, yaml.Mark] = field(default_factory=dict)
    nodes: dict[Loc, yaml.Node] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    reported: set[Loc] = field(default_factory=set)

    def add(self, mark: yaml.Mark | None, loc: Loc, message: str) -> None:
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        self.problems.append(Problem(self.shown, line, column, dotted(loc), message))
        self.reported.add(loc)


def compose(text: str, shown: str, empty_hint: str = EMPTY_HINT) -> Tree:
    tree = Tree(shown)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        tab = _tab_indented_line(text, mark.line + 1 if mark else None)
        if tab is not None:
            raise fail(shown, f"indent with spaces, not tabs (line {tab}) — YAML does not allow "
                       "tabs in indentation; most editors can convert them", tab, 1) from None
        raise fail(shown, f"YAML syntax error: {_plain_yaml_words(err.problem or err.context)} — "
                    "check the indentation and unclosed quotes on this or the line before; "
                    "put text containing ': ' or ' #' in quotes",
                    mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
    except yaml.reader.ReaderError as err:
        line, column = position(text.encode("utf-8"), len(text[:err.position].encode("utf-8")))
        raise fail(shown, f"contains a control character (#x{err.character:04x}) YAML does not allow "
                    "— remove it", line, column) from None
    except yaml.YAMLError as err:
        raise fail(shown, f"not valid YAML: {err}") from None
    except RecursionError:
        raise _too_deep(text, shown) from None
    if root is None:
        raise fail(shown, f"the file is empty — {empty_hint}")
    try:
        tree.data = _convert(root, (), tree, set())
    except yaml.MarkedYAMLError as err:  # a tag such as !custom that no plain value has
        mark = err.problem_mark or err.context_mark
        raise fail(shown, f"{err.problem or 'not valid YAML'} — remove the '!…' tag and write the "
                   "value as plain text", mark.line + 1 if mark else None,
                   mark.column + 1 if mark else None) from None
    except RecursionError:
        raise _too_deep(text, shown) from None
    return tree


def _too_deep(text: str, shown: str) -> ContentError:
    """Nesting too deep to read (thousands of brackets): the line where it gets deep."""
    depth, line, steps = 0, None, {"[": 1, "{": 1, "]": -1, "}": -1}
    for number, row in enumerate(text.splitlines(), start=1):
        for char in row:
            depth += steps.get(char, 0)
            if depth > 100 and line is None:
                line = number
    return fail(shown, "nested too deeply to read (brackets or indentation inside each other "
                "hundreds of times) — write the value out plainly", line)


def _tab_indented_line(text: str, up_to: int | None) -> int | None:
    """The first line (1-based, not after `up_to`) whose indentation holds a tab."""
    for number, line in enumerate(text.splitlines(), start=1):
        if up_to is not None and number > up_to:
            return None
        if "\t" in line[:len(line) - len(line.lstrip(" \t"))]:
            return number
    return None


def _plain_yaml_words(problem: str | None) -> str:
    """PyYAML's parser vocabulary, in words a writer knows."""
    words = {"<block end>": "the end of the indented block", "'<scalar>'": "more text",
             "<block mapping start>": "a new field", "<block sequence start>": "a list item",
             "'<document start>'": "'---'", "<stream end>": "the end of the file"}
    problem = problem or "not valid YAML"
    for token, word in words.items():
        problem = problem.replace(token, word)
    return problem


def _convert(node: yaml.Node, loc: Loc, tree: Tree, seen: set[int]) -> Any:
    if id(node) in seen:
        tree.add(tree.key_marks.get(loc, node.start_mark), loc, "anchors and aliases (&name, *name) are not supported here "
                 "— write the value out")
        return None
    seen.add(id(node))
    tree.marks[loc] = node.start_mark
    tree.nodes[loc] = node
    if isinstance(node, yaml.MappingNode):
        return _convert_mapping(node, loc, tree, seen)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, loc + (i,), tree, seen) for i, item in enumerate(node.value)]
    return _scalar(node, loc, tree)


def _convert_mapping(node: yaml.MappingNode, loc: Loc, tree: Tree, seen: set[int]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    first_line: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            tree.add(key_node.start_mark, loc, "a field name must be plain text — check the indentation")
            continue
        key = key_node.value
        if key in first_line:
            tree.add(key_node.start_mark, loc + (key,),
                     f"duplicate key '{key}' (first on line {first_line[key]}) — keep only one of them")
            continue
        first_line[key] = key_node.start_mark.line + 1
        tree.key_marks[loc + (key,)] = key_node.start_mark
        result[key] = _convert(value_node, loc + (key,), tree, seen)
    return result


def _scalar(node: yaml.ScalarNode, loc: Loc, tree: Tree) -> Any:
    """A scalar as written: quoted and block text stay text; plain words keep YAML's type for hints."""
    text = node.value
    if node.style is not None or node.tag in (STR_TAG, TIMESTAMP_TAG):
        return text.strip()
    if node.tag == NULL_TAG:
        return None
    if node.tag == BOOL_TAG:
        return text.lower() in ("yes", "true", "on")
    value = yaml.constructor.SafeConstructor().construct_object(node)
    if node.tag == INT_TAG and re.fullmatch(r"[-+]?0[0-7_]+", text):
        tree.add(node.start_mark, loc, f"YAML reads {text} as the octal number {value} — "
                 f"quote it (\"{text}\") if it is text, or drop the leading zero")
    return value


