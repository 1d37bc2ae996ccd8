"""Content stage: a newsletter YAML file becomes a validated `Newsletter` (source language).

`load_newsletter(path)` reads the file, composes the YAML node tree (so every
value keeps its line and column), turns it into plain data without YAML's
implicit guesses, and validates it with the pydantic models below. Every
problem of the file is collected and raised at once as one `ContentError`.

Two kinds of paths name a place in a newsletter:

* **error paths** follow the YAML structure with 0-based positions, e.g.
  `sections[2].image.alt` — they point a writer at the offending node;
* **text field paths** name translatable text by section id, so they stay
  stable when sections are reordered: `subject`, `preheader`, `intro`,
  `sections.<section-id>.title`, `sections.<section-id>.body`,
  `sections.<section-id>.image.alt`, `sections.<section-id>.image.credit`,
  `sections.<section-id>.figures.<n>.label` (n 0-based),
  `sections.<section-id>.link.label`, `acknowledgement.text`,
  `acknowledgement.logos.<n>.alt`, `sign_off`. `translator_notes` keys use
  these paths; `Newsletter.text_fields()`, `with_texts()`, `note_for()` and
  `field_lines` do too.

Newsletter text is data: nothing here renders or evaluates it.
"""
from __future__ import annotations

import difflib
import re
import struct
import typing
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Iterator, Literal
from urllib.parse import urlsplit

import yaml
from babel.numbers import list_currencies
from pydantic import (AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints,
                      ValidationError, ValidationInfo, field_validator, model_validator)
from pydantic_core import PydanticCustomError

from postbode.errors import ContentError, Problem

MAX_BYTES = 1_000_000
IMAGES_FOLDER = "images"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1)]
Loc = tuple[str | int, ...]


def _custom(message: str) -> PydanticCustomError:
    return PydanticCustomError("postbode", message)


def _check_image_src(src: str, info: ValidationInfo) -> str:
    """An https URL, or a file under images/ next to the newsletter that exists."""
    if src.startswith("https://"):
        if not urlsplit(src).netloc:
            raise _custom("the URL has no host — write it as https://host/path")
        return src
    if src.startswith("http://"):
        raise _custom("use https:// — mail clients block or warn about images over plain http")
    path = PurePosixPath(src)
    if src.startswith("newsletters/"):
        raise _custom(f"write the path relative to the newsletter's folder: {src.removeprefix('newsletters/')}")
    if "://" in src or path.is_absolute() or path.parts[:1] != (IMAGES_FOLDER,) or ".." in path.parts:
        raise _custom("must be an https URL or a file under newsletters/images/, written as images/NAME.png")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise _custom(f"'{path.suffix}' is not an image mail clients show — use PNG, JPEG or GIF")
    folder = (info.context or {}).get("folder")
    if folder is not None and not (folder / path).is_file():
        raise _custom(f"file {_display(folder / path)} not found — put the image in that folder or fix the name")
    return src


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Image(Model):
    """A picture in a section; `src` is an https URL or `images/NAME` next to the newsletter."""

    src: str
    alt: Text
    credit: Text | None = None
    width: int = Field(default=600, gt=0, le=600)
    height: int | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _height_from_file(cls, data: Any, info: ValidationInfo) -> Any:
        """A local image without a height gets one from its own proportions."""
        folder = (info.context or {}).get("folder")
        if not (isinstance(data, dict) and folder is not None and data.get("height") is None):
            return data
        src, width = data.get("src"), data.get("width", 600)
        if not (isinstance(src, str) and src.startswith(IMAGES_FOLDER + "/") and isinstance(width, int)):
            return data
        size = image_size(folder / src)
        if size is None or width <= 0:
            return data
        return {**data, "height": max(1, round(width * size[1] / size[0]))}

    @field_validator("src")
    @classmethod
    def _src(cls, value: str, info: ValidationInfo) -> str:
        return _check_image_src(value, info)


class Figure(Model):
    """A key figure. `value` is a quoted decimal string; a percent is written as shown ("85" = 85 %)."""

    value: Decimal = Field(allow_inf_nan=False)
    kind: Literal["number", "currency", "percent"] = "number"
    currency: str | None = Field(default=None, validate_default=True)
    label: Text

    @field_validator("value", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise _custom("must be a quoted string, e.g. value: \"1234.50\" — "
                          "unquoted numbers are read as floats and can lose cents")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "currency" and value is None:
            raise _custom("missing — a figure of kind currency needs an ISO 4217 code, e.g. currency: EUR")
        if value is not None and kind != "currency":
            raise _custom("only a figure of kind currency has a currency — remove it or set kind: currency")
        if value is not None and value not in list_currencies():
            raise _custom(f"'{value}' is not an ISO 4217 currency code — use e.g. EUR, USD, GBP")
        return value

    @property
    def number(self) -> Decimal:
        """The value as Babel's formatters expect it (a percent as a fraction)."""
        return self.value / 100 if self.kind == "percent" else self.value


class Link(Model):
    url: str
    label: Text

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _custom("must be a web address starting with https:// (or http://)")
        return value


class Section(Model):
    id: Slug
    title: Text
    body: Text
    image: Image | None = None
    figures: list[Figure] = Field(default_factory=list)
    link: Link | None = None
    audience: list[Slug] = Field(default_factory=list)

    def visible_to(self, view: str | None) -> bool:
        """Sections without an audience are for everyone; others only for their segments' views."""
        return not self.audience or (view is not None and view in self.audience)


class Logo(Model):
    src: str
    alt: Text

    @field_validator("src")
    @classmethod
    def _src(cls, value: str, info: ValidationInfo) -> str:
        return _check_image_src(value, info)


class Acknowledgement(Model):
    text: Text
    funders: list[Text] = Field(default_factory=list)
    logos: list[Logo] = Field(default_factory=list)


class Newsletter(Model):
    id: Slug
    date: AwareDatetime
    subject: Text
    preheader: Text
    intro: Text
    sections: list[Section] = Field(min_length=1)
    acknowledgement: Acknowledgement | None = None
    sign_off: Text
    translator_notes: dict[str, Text] = Field(default_factory=dict)
    source_path: Path | None = Field(default=None, exclude=True)
    field_lines: dict[str, int] = Field(default_factory=dict, exclude=True, repr=False)
    # "sections.<id>.audience.<n>" → line, so a segment name can be checked against segments.yaml
    audience_lines: dict[str, int] = Field(default_factory=dict, exclude=True, repr=False)

    @field_validator("date", mode="before")
    @classmethod
    def _date_has_time(cls, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            raise _custom("a date without time — give date, time and UTC offset, "
                          "e.g. 2018-07-12T10:00:00+02:00")
        return value

    def sections_for(self, view: str | None) -> list[Section]:
        return [s for s in self.sections if s.visible_to(view)]

    def text_fields(self) -> list[tuple[str, str]]:
        """Every translatable text as (text field path, text), in document order."""
        data = self.model_dump()
        return [(path, text) for path, loc in _text_locs(data)
                if isinstance(text := _at(data, loc), str)]

    def with_texts(self, texts: dict[str, str]) -> Newsletter:
        """A copy with the given text fields replaced (e.g. by their translations)."""
        locs = dict(_text_locs(self.model_dump()))
        unknown = sorted(set(texts) - set(locs))
        if unknown:
            raise KeyError(f"no such text field: {', '.join(unknown)}")
        result: Newsletter = self
        for path, text in texts.items():
            result = _replaced(result, locs[path], text)
        return result

    def note_for(self, path: str) -> str | None:
        """The translator note for a text field path, if the writer left one."""
        return self.translator_notes.get(path)

    def image_file(self, src: str) -> Path | None:
        """The file behind a local image `src` (None for an https URL)."""
        if src.startswith("https://") or self.source_path is None:
            return None
        return self.source_path.parent / src


def load_newsletter(path: Path) -> Newsletter:
    """Read and validate one newsletter file; raise ContentError listing every problem."""
    path = Path(path)
    shown = _display(path)
    text = _read_text(path, shown)
    tree = _compose(text, shown)
    data = tree.data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "a single value"
        tree.add(tree.marks.get(()), (), f"the file holds {kind}, not fields — write it as "
                 "'id: …', 'date: …', 'subject: …' lines (see newsletters/2018-07-resultaten.yaml)")
        raise ContentError(tree.problems, summary=_summary(shown, tree.problems))
    for internal in ("source_path", "field_lines", "audience_lines"):
        if internal in data:
            tree.add(tree.key_marks.get((internal,)), (internal,), _unknown_field((internal,)))
            del data[internal]
    newsletter = _validate(data, path, tree)
    _check_section_ids(data, tree)
    _check_translator_notes(data, tree)
    if tree.problems or newsletter is None:
        raise ContentError(sorted(tree.problems, key=_order), summary=_summary(shown, tree.problems))
    lines = {p: tree.marks[loc].line + 1 for p, loc in _text_locs(data) if loc in tree.marks}
    return newsletter.model_copy(update={"source_path": path, "field_lines": lines,
                                         "audience_lines": _audience_lines(newsletter, tree)})


def _audience_lines(newsletter: Newsletter, tree: _Tree) -> dict[str, int]:
    """The line of each segment name under a section's `audience:`."""
    lines = {}
    for i, section in enumerate(newsletter.sections):
        for n, _ in enumerate(section.audience):
            mark = tree.marks.get(("sections", i, "audience", n)) or tree.marks.get(("sections", i, "audience"))
            if mark is not None:
                lines[f"sections.{section.id}.audience.{n}"] = mark.line + 1
    return lines


# --- reading the file -------------------------------------------------------

def _display(path: Path) -> str:
    """The path as a person would type it: relative to the working folder when possible."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _fail(shown: str, message: str, line: int | None = None, column: int | None = None) -> ContentError:
    return ContentError([Problem(shown, line, column, "", message)])


def _read_text(path: Path, shown: str) -> str:
    """The file as text, refusing what is not a newsletter: too big, binary, not UTF-8, empty."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise _fail(shown, f"the file is {size / 1_000_000:.1f} MB; a newsletter may be at most "
                        f"{MAX_BYTES // 1_000_000} MB — is this the right file? Put images in "
                        "newsletters/images/ and refer to them by name")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise _fail(shown, "file not found — check the path (newsletters live in newsletters/)") from None
    except IsADirectoryError:
        raise _fail(shown, "is a folder — give the path of one newsletter .yaml file") from None
    except OSError as err:
        raise _fail(shown, f"cannot be read ({err.strerror}) — check its permissions") from err
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _fail(shown, "is saved as UTF-16 — save it as UTF-8", 1, 1)
    if b"\x00" in raw:
        line, column = _position(raw, raw.index(b"\x00"))
        raise _fail(shown, "is a binary file, not YAML text — is this the right file?", line, column)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line, column = _position(raw, err.start)
        raise _fail(shown, f"is not valid UTF-8 (byte 0x{raw[err.start]:02X}) — save the file as UTF-8 "
                    "(in most editors: Save As… → Encoding: UTF-8)", line, column) from None
    if not text.strip():
        raise _fail(shown, "the file is empty — start from newsletters/2018-07-resultaten.yaml")
    return text


def _position(raw: bytes, offset: int) -> tuple[int, int]:
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
class _Tree:
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
        self.problems.append(Problem(self.shown, line, column, _dotted(loc), message))
        self.reported.add(loc)


def _compose(text: str, shown: str) -> _Tree:
    tree = _Tree(shown)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        raise _fail(shown, f"YAML syntax error: {_plain_yaml_words(err.problem or err.context)} — "
                    "check the indentation and unclosed quotes on this or the line before; "
                    "put text containing ': ' or ' #' in quotes",
                    mark.line + 1 if mark else None, mark.column + 1 if mark else None) from None
    except yaml.reader.ReaderError as err:
        line, column = _position(text.encode("utf-8"), len(text[:err.position].encode("utf-8")))
        raise _fail(shown, f"contains a control character (#x{err.character:04x}) YAML does not allow "
                    "— remove it", line, column) from None
    except yaml.YAMLError as err:
        raise _fail(shown, f"not valid YAML: {err}") from None
    except RecursionError:
        raise _too_deep(text, shown) from None
    if root is None:
        raise _fail(shown, "the file is empty — start from newsletters/2018-07-resultaten.yaml")
    try:
        tree.data = _convert(root, (), tree, set())
    except yaml.MarkedYAMLError as err:  # a tag such as !custom that no plain value has
        mark = err.problem_mark or err.context_mark
        raise _fail(shown, f"{err.problem or 'not valid YAML'} — remove the '!…' tag and write the "
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
    return _fail(shown, "nested too deeply to read (brackets or indentation inside each other "
                 "hundreds of times) — write the value out plainly", line)


def _plain_yaml_words(problem: str | None) -> str:
    """PyYAML's parser vocabulary, in words a writer knows."""
    words = {"<block end>": "the end of the indented block", "'<scalar>'": "more text",
             "<block mapping start>": "a new field", "<block sequence start>": "a list item",
             "'<document start>'": "'---'", "<stream end>": "the end of the file"}
    problem = problem or "not valid YAML"
    for token, word in words.items():
        problem = problem.replace(token, word)
    return problem


def _convert(node: yaml.Node, loc: Loc, tree: _Tree, seen: set[int]) -> Any:
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


def _convert_mapping(node: yaml.MappingNode, loc: Loc, tree: _Tree, seen: set[int]) -> dict[str, Any]:
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


def _scalar(node: yaml.ScalarNode, loc: Loc, tree: _Tree) -> Any:
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


# --- validation and its messages ---------------------------------------------

MISSING_HINTS = {
    "alt": "every image needs alt text for screen readers",
    "src": "give an https URL or a file under newsletters/images/, e.g. images/NAME.png",
    "id": "give a slug such as 2018-07-resultaten (lowercase letters, digits, hyphens)",
    "date": "give the send date with its UTC offset, e.g. 2018-07-12T10:00:00+02:00",
    "value": "give the figure as a quoted string, e.g. value: \"249\"",
    "label": "say in words what this is",
    "url": "give a web address starting with https://",
    "sections": "a newsletter needs at least one section",
    "title": "every section needs a title",
    "body": "write the section's text (Markdown)",
    "subject": "every mail needs a subject line",
    "preheader": "give the short line mail clients show after the subject",
    "intro": "write a short opening paragraph",
    "sign_off": "give the closing line, e.g. \"Met vriendelijke groet\"",
    "text": "write the thank-you text",
}


def _validate(data: dict[str, Any], path: Path, tree: _Tree) -> Newsletter | None:
    try:
        return Newsletter.model_validate(data, context={"folder": path.parent})
    except ValidationError as err:
        errors = err.errors()
        misspelt = {_suggested(tuple(e["loc"])) for e in errors if e["type"] == "extra_forbidden"}
        for error in errors:
            loc = tuple(error["loc"])
            if any(loc[:n] in tree.reported for n in range(len(loc) + 1)):
                continue
            if error["type"] == "missing" and loc in misspelt:
                continue  # the unknown field's "did you mean" already says it
            mark = tree.key_marks.get(loc) if error["type"] == "extra_forbidden" else _mark_for(loc, tree)
            tree.add(mark, loc, _message(error, loc, tree))
        return None


def _mark_for(loc: Loc, tree: _Tree) -> yaml.Mark | None:
    """The position of a value, or of its closest parent when the value is missing."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in tree.marks:
            return tree.marks[loc[:n]]
    return None


def _message(error: dict[str, Any], loc: Loc, tree: _Tree) -> str:
    kind = error["type"]
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "extra_forbidden":
        return _unknown_field(loc)
    if kind == "missing":
        return f"missing — {MISSING_HINTS.get(name, 'add it')}"
    if kind == "postbode":
        return error["msg"]
    if kind in ("string_type", "string_sub_type"):
        return _not_text(tree.nodes.get(loc))
    if kind == "string_too_short":
        return "is empty — write the text"
    if kind == "string_pattern_mismatch":
        return "must be a slug: lowercase letters a-z, digits and hyphens, e.g. toerisme-2018"
    if kind == "timezone_aware":
        return ("date-time without UTC offset — add +01:00 (winter time), +02:00 (summer time) "
                "or Z, e.g. 2018-07-12T10:00:00+02:00")
    if kind.startswith(("datetime", "date_")):
        return "expected an ISO date-time with UTC offset, e.g. 2018-07-12T10:00:00+02:00"
    if kind.startswith("decimal") or kind == "finite_number":
        return "expected a number such as \"1234.50\" — a dot for decimals, no thousands separator"
    if kind == "literal_error":
        return f"must be one of: {error['ctx']['expected'].replace(chr(39), '')}"
    if kind in ("list_type", "tuple_type"):
        return "expected a list — write each item on its own line starting with '- '"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected fields (name: value lines, indented under this one)"
    if kind.startswith("int") or kind.startswith("greater_than") or kind.startswith("less_than"):
        return f"{error['msg'].lower()} — a whole number of pixels"
    if kind == "too_short":
        return f"missing — {MISSING_HINTS.get(name, 'add at least one item')}"
    return error["msg"]


def _not_text(node: yaml.Node | None) -> str:
    """Why a value that should be text is not, with the YAML trap behind it."""
    if isinstance(node, yaml.MappingNode):
        return "expected text, found fields — check the indentation"
    if isinstance(node, yaml.SequenceNode):
        return "expected text, found a list — remove the '- ' or check the indentation"
    if node is None or node.tag == NULL_TAG:
        return "is empty — write the text after the colon, or remove the line"
    raw = node.value
    if node.tag == BOOL_TAG:
        return f"YAML reads an unquoted {raw} as a yes/no value, not text — quote it: \"{raw}\""
    return f"YAML reads {raw} as a number, not text — quote it: \"{raw}\""


def _unknown_field(loc: Loc) -> str:
    allowed = _fields_at(loc[:-1])
    name = str(loc[-1])
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"known fields here: {', '.join(allowed)}"
    return f"unknown field '{name}' — {hint}"


def _suggested(loc: Loc) -> Loc | None:
    """Where an unknown field probably meant to be: the known field it resembles."""
    close = difflib.get_close_matches(str(loc[-1]), _fields_at(loc[:-1]), n=1, cutoff=0.6)
    return loc[:-1] + (close[0],) if close else None


def _fields_at(loc: Loc) -> list[str]:
    """The fields a writer may use at a place in the file."""
    model: type[BaseModel] | None = Newsletter
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) if model else None
        model = _inner_model(info.annotation) if info else None
    if model is None:
        return []
    return [name for name, info in model.model_fields.items() if not info.exclude]


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if found := _inner_model(arg):
            return found
    return None


def _check_section_ids(data: dict[str, Any], tree: _Tree) -> None:
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


def _check_translator_notes(data: dict[str, Any], tree: _Tree) -> None:
    notes = data.get("translator_notes")
    if not isinstance(notes, dict):
        return
    paths = [path for path, _ in _text_locs(data)]
    for key in notes:
        if key in paths:
            continue
        close = difflib.get_close_matches(key, paths, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else "use a text field path such as sections.<section-id>.title"
        loc = ("translator_notes", key)
        tree.add(tree.key_marks.get(loc), loc, f"no text field '{key}' to attach this note to — {hint}")


# --- text field paths ---------------------------------------------------------

def _text_locs(data: dict[str, Any]) -> Iterator[tuple[str, Loc]]:
    """(text field path, position in the data) for every text field present, in document order."""
    for name in ("subject", "preheader", "intro"):
        if name in data:
            yield name, (name,)
    sections = data.get("sections")
    for i, section in enumerate(sections if isinstance(sections, list) else []):
        if isinstance(section, dict) and isinstance(section.get("id"), str):
            yield from _section_text_locs(section, ("sections", i), f"sections.{section['id']}")
    ack = data.get("acknowledgement")
    if isinstance(ack, dict):
        if "text" in ack:
            yield "acknowledgement.text", ("acknowledgement", "text")
        yield from _list_text_locs(ack, ("acknowledgement",), "acknowledgement", "logos", "alt")
    if "sign_off" in data:
        yield "sign_off", ("sign_off",)


def _section_text_locs(section: dict[str, Any], loc: Loc, base: str) -> Iterator[tuple[str, Loc]]:
    for name in ("title", "body"):
        if name in section:
            yield f"{base}.{name}", loc + (name,)
    image = section.get("image")
    for name in ("alt", "credit"):
        if isinstance(image, dict) and image.get(name) is not None:
            yield f"{base}.image.{name}", loc + ("image", name)
    yield from _list_text_locs(section, loc, base, "figures", "label")
    link = section.get("link")
    if isinstance(link, dict) and "label" in link:
        yield f"{base}.link.label", loc + ("link", "label")


def _list_text_locs(parent: dict[str, Any], loc: Loc, base: str, name: str, key: str
                    ) -> Iterator[tuple[str, Loc]]:
    items = parent.get(name)
    for n, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict) and key in item:
            yield f"{base}.{name}.{n}.{key}", loc + (name, n, key)


def _at(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


def _replaced(obj: Any, loc: Loc, text: str) -> Any:
    """A copy of a frozen model (or list) with the value at `loc` replaced."""
    head, rest = loc[0], loc[1:]
    if isinstance(obj, list):
        items = list(obj)
        items[head] = _replaced(obj[head], rest, text)
        return items
    value = text if not rest else _replaced(getattr(obj, head), rest, text)
    return obj.model_copy(update={head: value})


# --- paths, order, image sizes-----------------------------------------------------

def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _order(problem: Problem) -> tuple[int, int]:
    return problem.line or 0, problem.column or 0


def _summary(shown: str, problems: list[Problem]) -> str:
    count = len(problems)
    return f"{shown}: {count} problem{'s' if count != 1 else ''} — nothing was written"


def image_size(path: Path) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG file, read from its header (None if unknown)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            if head[:6] in (b"GIF87a", b"GIF89a"):
                return struct.unpack("<HH", head[6:10])
            if head.startswith(b"\xff\xd8"):
                fh.seek(2)
                return _jpeg_size(fh)
    except OSError:
        return None
    return None


def _jpeg_size(fh: typing.BinaryIO) -> tuple[int, int] | None:
    """Walk JPEG segments to the frame header that holds the size."""
    while True:
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if marker[1] in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">xHH", fh.read(5))
            return width, height
        fh.seek(length - 2, 1)
