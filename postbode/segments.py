"""Segments: named rules over lists, tags, locales and attributes, read from segments.yaml.

Each segment compiles to one SQL condition over a `subscribers` row `s`; the
audience stage combines them. Every problem in the file is reported with its
line, all at once.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from babel import Locale, UnknownLocaleError

from postbode.errors import AudienceError, InputError, Problem

if TYPE_CHECKING:
    from postbode.config import Settings

FieldType = Literal["text", "date", "number"]
FIELD_TYPES = ("text", "date", "number")
CRITERIA = ("lists", "segments", "tags", "locales", "where")
SEGMENT_KEYS = ("description", *CRITERIA, "exclude", "formality", "view")
TOP_KEYS = ("lists", "fields", "segments")
NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
# Attribute operators by suffix, and the field types they apply to.
OPERATORS = {
    "_not": ("!=", ("text", "date", "number")),
    "_after": (">", ("date",)),
    "_before": ("<", ("date",)),
    "_min": (">=", ("number",)),
    "_max": ("<=", ("number",)),
}


class SegmentsError(InputError, AudienceError):
    """segments.yaml does not validate."""


@dataclass(frozen=True)
class ListSpec:
    name: str
    file: Path | None
    description: str


@dataclass(frozen=True)
class Segment:
    """A named audience: its SQL condition and what its members see."""

    name: str
    line: int
    sql: str
    params: tuple[object, ...]
    formality: Literal["formal", "informal"] | None
    view: str | None
    description: str


@dataclass(frozen=True)
class SegmentsFile:
    lists: dict[str, ListSpec]
    fields: dict[str, FieldType]
    columns: dict[str, str]
    segments: dict[str, Segment]
    currencies: dict[str, str] = field(default_factory=dict)  # number field → ISO 4217 code


# ---------------------------------------------------------------- YAML with lines


class _Map(dict):
    """A YAML mapping that remembers the line of itself and of each key."""

    line: int
    key_lines: dict[Any, int]


class _Seq(list):
    line: int
    item_lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.MarkedYAMLError("while reading a mapping", node.start_mark,
                                       f"the key {key!r} appears twice", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    result = _Seq(loader.construct_object(item, deep=True) for item in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [item.start_mark.line + 1 for item in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def _read(path: Path) -> _Map:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AudienceError(f"{path}: file not found; create it (see subscribers/segments.yaml "
                            "in the project for an example) or set [paths] segments") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        line = mark.line + 1 if mark else None
        raise SegmentsError(Problem(str(path), line, None, "", f"not valid YAML: {err.problem}")) from None
    if data is None:
        data = _Map()
        data.line, data.key_lines = 1, {}
    if not isinstance(data, _Map):
        raise SegmentsError(Problem(str(path), 1, None, "", "must be a mapping with lists, fields, segments"))
    return data


# ---------------------------------------------------------------- loading


class _Reader:
    """Collects problems while turning the YAML into lists, fields and compiled segments."""

    def __init__(self, path: Path, settings: "Settings"):
        self.path = path
        self.settings = settings
        self.problems: list[Problem] = []
        self.currencies: dict[str, str] = {}

    def problem(self, line: int | None, field: str, message: str) -> None:
        self.problems.append(Problem(str(self.path), line, None, field, message))

    def unknown_keys(self, mapping: _Map, allowed: tuple[str, ...], where: str) -> None:
        for key, line in mapping.key_lines.items():
            if key not in allowed:
                self.problem(line, f"{where}{key}", f"unknown key; use one of {', '.join(allowed)}")

    def lists(self, data: _Map) -> dict[str, ListSpec]:
        raw = data.get("lists") or _Map()
        if not isinstance(raw, dict):
            self.problem(data.key_lines.get("lists"), "lists", "must map list names to {file, description}")
            return {}
        lists = {}
        for name, spec in raw.items():
            line = raw.key_lines[name]
            if not isinstance(name, str) or not NAME.match(name):
                self.problem(line, f"lists.{name}", "a list name is lower-case letters, digits, - and _")
                continue
            if isinstance(spec, str):
                spec = {"file": spec}
            elif isinstance(spec, _Map):
                self.unknown_keys(spec, ("file", "description"), f"lists.{name}.")
            elif spec is not None:
                self.problem(line, f"lists.{name}", "must be a file name or {file, description}")
            spec = spec or {}
            file = spec.get("file")
            path = (self.settings.subscribers_dir / file).resolve() if file else None
            lists[name] = ListSpec(name, path, str(spec.get("description") or ""))
        return lists

    def fields(self, data: _Map) -> tuple[dict[str, FieldType], dict[str, str]]:
        """Attribute types by field name, and the field each CSV column alias stands for."""
        raw = data.get("fields") or _Map()
        fields: dict[str, FieldType] = {}
        columns: dict[str, str] = {}
        if not isinstance(raw, dict):
            self.problem(data.key_lines.get("fields"), "fields", "must map attribute names to text|date|number")
            return fields, columns
        for name, spec in raw.items():
            line = raw.key_lines[name]
            if isinstance(spec, _Map):
                self.unknown_keys(spec, ("type", "columns", "currency"), f"fields.{name}.")
                kind, aliases = spec.get("type", "text"), spec.get("columns") or []
                if spec.get("currency"):  # a number that is an amount of money, e.g. EUR
                    self.currencies[name] = str(spec["currency"]).upper()
            else:
                kind, aliases = spec, []
            if kind not in FIELD_TYPES:
                self.problem(line, f"fields.{name}", f"unknown type {kind!r}; use one of {', '.join(FIELD_TYPES)}")
                continue
            fields[name] = kind
            for alias in aliases if isinstance(aliases, list) else [aliases]:
                columns[column_key(str(alias))] = name
        return fields, columns


def column_key(header: str) -> str:
    """A CSV header as compared with aliases: lower-case, without spaces, dashes, dots, underscores."""
    return re.sub(r"[\s\-_.]+", "", header.strip().lower())


def load_file(settings: "Settings") -> SegmentsFile:
    """Read and validate segments.yaml: every problem with its line, or SegmentsError."""
    path = Path(settings.segments_file)
    data = _read(path)
    reader = _Reader(path, settings)
    reader.unknown_keys(data, TOP_KEYS, "")
    lists = reader.lists(data)
    fields, columns = reader.fields(data)
    raw = data.get("segments") or _Map()
    if not isinstance(raw, dict):
        reader.problem(data.key_lines.get("segments"), "segments", "must map segment names to rules")
        raw = _Map()
    compiler = _Compiler(reader, lists, fields, raw)
    segments = {name: seg for name in raw if (seg := compiler.segment(name)) is not None}
    if reader.problems:
        raise SegmentsError(reader.problems, f"{path}: {len(reader.problems)} problem(s) in the segments")
    return SegmentsFile(lists, fields, columns, segments, reader.currencies)


def load_segments(settings: "Settings") -> dict[str, Segment]:
    """Every segment of segments.yaml, validated and compiled."""
    return load_file(settings).segments


def find_segments(settings: "Settings", names: list[str]) -> list[Segment]:
    """The named segments, each once, in the order given; AudienceError naming any unknown one."""
    known = load_segments(settings)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise AudienceError(
            f"unknown segment {', '.join(map(repr, unknown))}; {settings.segments_file} defines "
            f"{', '.join(sorted(known))}"
        )
    return [known[n] for n in dict.fromkeys(names)]


def load_lists(settings: "Settings") -> dict[str, ListSpec]:
    return load_file(settings).lists


@lru_cache(maxsize=256)
def parse_locale(value: str) -> str | None:
    """`nl-BE`, `nl_be`, `NL` → `nl_BE`, `nl`; None when Babel does not know it."""
    text = value.strip().replace("-", "_")
    if not text:
        return None
    parts = text.split("_")
    parts[0] = parts[0].lower()
    if len(parts) > 1 and len(parts[-1]) == 2:
        parts[-1] = parts[-1].upper()
    try:
        return str(Locale.parse("_".join(parts)))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


# ---------------------------------------------------------------- compiling rules to SQL


class _Compiler:
    def __init__(self, reader: _Reader, lists: dict[str, ListSpec], fields: dict[str, FieldType], raw: _Map):
        self.r = reader
        self.lists = lists
        self.fields = fields
        self.raw = raw
        self.done: dict[str, Segment | None] = {}
        self.busy: list[str] = []

    def segment(self, name: str) -> Segment | None:
        if name in self.done:
            return self.done[name]
        line = self.raw.key_lines[name]
        rules = self.raw[name]
        if not isinstance(name, str) or not NAME.match(name):
            self.r.problem(line, f"segments.{name}", "a segment name is lower-case letters, digits, - and _")
            self.done[name] = None
            return None
        if not isinstance(rules, _Map):
            self.r.problem(line, f"segments.{name}", "must be a mapping of rules (lists, where, …)")
            self.done[name] = None
            return None
        self.busy.append(name)
        where = f"segments.{name}."
        self.r.unknown_keys(rules, SEGMENT_KEYS, where)
        include = self.criteria(rules, where, " AND ")
        if include is None:
            self.r.problem(line, f"segments.{name}",
                           "has no rule; give at least one of lists, segments, tags, locales, where "
                           "(lists: \"*\" means every list)")
            include = ("0", [])
        sql, params = include
        exclude = rules.get("exclude")
        if isinstance(exclude, _Map):
            self.r.unknown_keys(exclude, CRITERIA, f"{where}exclude.")
            excluded = self.criteria(exclude, f"{where}exclude.", " OR ")
            if excluded:
                sql = f"({sql}) AND NOT ({excluded[0]})"
                params = [*params, *excluded[1]]
        elif exclude is not None:
            self.r.problem(rules.key_lines["exclude"], f"{where}exclude", "must be a mapping of rules")
        formality = rules.get("formality")
        if formality not in (None, "formal", "informal"):
            self.r.problem(rules.key_lines["formality"], f"{where}formality", "use formal or informal")
            formality = None
        view = rules.get("view")
        if view is not None and not isinstance(view, str):
            self.r.problem(rules.key_lines["view"], f"{where}view", "must be a section audience name")
            view = None
        self.busy.pop()
        segment = Segment(name, line, sql, tuple(params), formality, view, str(rules.get("description") or ""))
        self.done[name] = segment
        return segment

    def criteria(self, rules: _Map, where: str, joiner: str) -> tuple[str, list[object]] | None:
        parts: list[tuple[str, list[object]]] = []
        for key in CRITERIA:
            if key in rules:
                part = getattr(self, f"rule_{key}")(rules[key], rules.key_lines[key], f"{where}{key}")
                if part:
                    parts.append(part)
        if not parts:
            return None
        return joiner.join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]

    def names(self, value: Any, line: int, field: str) -> tuple[str, list[str], list[int]] | None:
        """A list of names (any), or {any: [...]} / {all: [...]}: (mode, names, lines)."""
        mode = "any"
        if isinstance(value, _Map):
            self.r.unknown_keys(value, ("any", "all"), f"{field}.")
            if len(value) != 1 or next(iter(value)) not in ("any", "all"):
                self.r.problem(line, field, "use either any: [...] or all: [...]")
                return None
            mode, value = next(iter(value.items()))
        if isinstance(value, str):
            value = _Seq([value])
            value.item_lines = [line]
        if not isinstance(value, list) or not value:
            self.r.problem(line, field, "must be a list of names")
            return None
        lines = getattr(value, "item_lines", [line] * len(value))
        return mode, [str(v) for v in value], lines

    def rule_lists(self, value: Any, line: int, field: str):
        if value == "*":
            return "EXISTS (SELECT 1 FROM memberships m WHERE m.subscriber_id = s.id)", []
        parsed = self.names(value, line, field)
        if not parsed:
            return None
        mode, names, lines = parsed
        for name, at in zip(names, lines):
            if name not in self.lists:
                self.r.problem(at, field, f"unknown list {name!r}; segments.yaml declares "
                               f"{', '.join(self.lists) or 'no lists'} under lists:")
        return _any_or_all(mode, "m.list", "memberships m WHERE m.subscriber_id = s.id AND",
                           names)

    def rule_tags(self, value: Any, line: int, field: str):
        parsed = self.names(value, line, field)
        if not parsed:
            return None
        mode, names, _ = parsed
        names = [n.strip().lower() for n in names]
        return _any_or_all(mode, "t.value", "json_each(s.tags) t WHERE", names)

    def rule_segments(self, value: Any, line: int, field: str):
        parsed = self.names(value, line, field)
        if not parsed:
            return None
        mode, names, lines = parsed
        parts, params = [], []
        for name, at in zip(names, lines):
            if name not in self.raw:
                self.r.problem(at, field, f"unknown segment {name!r}; defined: {', '.join(map(str, self.raw))}")
            elif name in self.busy:
                self.r.problem(at, field, f"segment {name!r} refers back to itself "
                               f"({' → '.join([*self.busy, name])})")
            elif (other := self.segment(name)) is not None:
                parts.append(f"({other.sql})")
                params.extend(other.params)
        if not parts:
            return None
        return (" OR " if mode == "any" else " AND ").join(parts), params

    def rule_locales(self, value: Any, line: int, field: str):
        parsed = self.names(value, line, field)
        if not parsed:
            return None
        _, names, lines = parsed
        parts, params = [], []
        loc = "coalesce(s.locale, ?)"
        for name, at in zip(names, lines):
            locale = parse_locale(name)
            if locale is None:
                self.r.problem(at, field, f"unknown locale {name!r}; use a code like nl, nl_BE, en")
                continue
            if "_" in locale:
                parts.append(f"{loc} = ?")
                params += [self.r.settings.default_locale, locale]
            else:  # a language matches all its regional variants
                parts.append(f"({loc} = ? OR {loc} LIKE ? ESCAPE '\\')")
                params += [self.r.settings.default_locale, locale, self.r.settings.default_locale, f"{locale}\\_%"]
        if not parts:
            return None
        return " OR ".join(parts), params

    def rule_where(self, value: Any, line: int, field: str):
        if not isinstance(value, _Map) or not value:
            self.r.problem(line, field, "must map attribute names to values, e.g. donor_tier: major")
            return None
        parts, params = [], []
        for key, wanted in value.items():
            at = value.key_lines[key]
            part = self.comparison(str(key), wanted, at, f"{field}.{key}")
            if part:
                parts.append(part[0])
                params.extend(part[1])
        if not parts:
            return None
        return " AND ".join(parts), params

    def comparison(self, key: str, wanted: Any, line: int, field: str):
        name, op, suffix = key, "=", ""
        if key not in self.fields:
            for suffix, (sql_op, _) in OPERATORS.items():
                if key.endswith(suffix) and key[: -len(suffix)] in self.fields:
                    name, op = key[: -len(suffix)], sql_op
                    break
            else:
                self.r.problem(line, field, f"unknown field {key!r}; declare it under fields: "
                               f"(known: {', '.join(self.fields) or 'none'}), operators: "
                               f"{', '.join(OPERATORS)}")
                return None
        kind = self.fields[name]
        if op != "=" and kind not in OPERATORS[suffix][1]:
            self.r.problem(line, field, f"{suffix} does not apply to a {kind} field")
            return None
        values = wanted if isinstance(wanted, list) else [wanted]
        converted = [convert_value(kind, v) for v in values]
        if any(v is None for v in converted) or not converted:
            self.r.problem(line, field, f"{wanted!r} is not a {kind}"
                           + (" (write dates as 2018-01-01)" if kind == "date" else ""))
            return None
        path = f'$."{name}"'
        if len(converted) > 1 and op in ("=", "!="):
            neg = "NOT " if op == "!=" else ""
            return f"json_extract(s.attributes, ?) {neg}IN ({', '.join('?' * len(converted))})", [path, *converted]
        if len(converted) > 1:
            self.r.problem(line, field, "give one value for a comparison")
            return None
        return f"json_extract(s.attributes, ?) {op} ?", [path, converted[0]]


def convert_value(kind: str, value: Any) -> object | None:
    """A value as stored in the attributes JSON for a field of this type; None if it is not one."""
    if kind == "text":
        return None if isinstance(value, (dict, list)) or value is None else str(value)
    if kind == "date":
        return parse_date(value)
    if kind == "number":
        return parse_number(value)
    return None


DATE_FORMATS = ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y")


def parse_date(value: Any) -> str | None:
    """ISO date text from a date, 2018-01-31, 31-01-2018, 31/01/2018 or 31.01.2018."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        return None
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(value.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    return None


def parse_number(value: Any) -> float | int | None:
    """A number from 1250, 1250.5, Dutch 1.250,50 or 1250,5."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip().replace("€", "").replace(" ", "")
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def _any_or_all(mode: str, column: str, source: str, names: list[str]) -> tuple[str, list[str]]:
    """SQL true when the subscriber has any (or all) of `names` in `column` of `source`."""
    marks = ", ".join("?" * len(names))
    if mode == "any":
        return f"EXISTS (SELECT 1 FROM {source} {column} IN ({marks}))", names
    return (f"(SELECT count(DISTINCT {column}) FROM {source} {column} IN ({marks}))"
            f" = {len(set(names))}", names)
