"""pydantic's validation errors, said in words a newsletter writer knows."""
from __future__ import annotations

import difflib
import typing
from typing import Any

import yaml
from pydantic import BaseModel

from postbode.content.model import Newsletter
from postbode.content.paths import Loc
from postbode.content.yaml_positions import BOOL_TAG, NULL_TAG

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


def message(error: dict[str, Any], loc: Loc, node: yaml.Node | None) -> str:
    """What a pydantic error at `loc` means, and what to do about it."""
    kind = error["type"]
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    if kind == "extra_forbidden":
        return unknown_field(loc)
    if kind == "missing":
        return f"missing — {MISSING_HINTS.get(name, 'add it')}"
    if kind == "postbode":
        return error["msg"]
    if kind in ("string_type", "string_sub_type"):
        return _not_text(node)
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


def unknown_field(loc: Loc) -> str:
    allowed = _fields_at(loc[:-1])
    name = str(loc[-1])
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"known fields here: {', '.join(allowed)}"
    return f"unknown field '{name}' — {hint}"


def suggested(loc: Loc) -> Loc | None:
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

