"""Paths that name a place in a newsletter.

* **error paths** follow the YAML structure with 0-based positions, e.g.
  `sections[2].image.alt` — they point a writer at the offending node;
* **text field paths** name translatable text by section id, so they stay
  stable when sections are reordered: `subject`, `preheader`, `intro`,
  `sections.<section-id>.title`, `sections.<section-id>.body`,
  `sections.<section-id>.image.alt`, `sections.<section-id>.image.credit`,
  `sections.<section-id>.figures.<figure-key>.label`,
  `sections.<section-id>.link.label`, `acknowledgement.text`,
  `acknowledgement.logos.<logo-key>.alt`, `sign_off`. A figure's key is its
  `id`, else its value (`249`, `1234-50`); a logo's its `id`, else its file
  name without extension — never a position, so a reordering keeps every
  translation with its text.
"""
from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

Loc = tuple[str | int, ...]


def display(path: Path) -> str:
    """The path as a person would type it: relative to the working folder when possible."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def dotted(loc: Loc) -> str:
    """An error path: `sections[2].image.alt`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def text_locs(data: dict[str, Any]) -> Iterator[tuple[str, Loc]]:
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
            yield f"{base}.{name}.{item_key(item, name)}.{key}", loc + (name, n, key)


def item_key(item: dict[str, Any], kind: str) -> str:
    """A figure's or logo's name in text field paths: its `id`, else its value or file name."""
    if isinstance(item.get("id"), str):
        return item["id"]
    # a figure is named by its value as written in the file ("125.000"), also once parsed
    raw = (item.get("written") or item.get("value")) if kind == "figures" else PurePosixPath(str(item.get("src", ""))).stem
    return re.sub(r"[^0-9a-z]+", "-", str(raw).strip().lower()).strip("-") or "0"


def value_at(data: Any, loc: Loc) -> Any:
    for part in loc:
        data = data[part]
    return data


def replaced(obj: Any, loc: Loc, text: str) -> Any:
    """A copy of a frozen model (or list) with the value at `loc` replaced."""
    head, rest = loc[0], loc[1:]
    if isinstance(obj, list):
        items = list(obj)
        items[head] = replaced(obj[head], rest, text)
        return items
    value = text if not rest else replaced(getattr(obj, head), rest, text)
    return obj.model_copy(update={head: value})

