"""Segments: named rules over lists, tags, locales and attributes, read from segments.yaml.

Each segment compiles to one SQLAlchemy condition over a `subscribers` row (values
bound as parameters by construction); a segment that names another uses that
one's members as a shared sub-query. The audience stage combines them. Every
problem in the file is reported with its line, all at once.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import operator
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

import yaml
from babel import Locale, UnknownLocaleError
from sqlalchemy import CTE, ColumnElement, and_, distinct, exists, false, func, not_, or_, select

from postbode.audience.model import Formality
from postbode.errors import AudienceError, InputError, Problem
from postbode.store import json_items, json_number, json_text
from postbode.store.schema import memberships, subscribers

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


LIST_KEYS = ("file", "description", "self_service", "reason", "welcome", "consent", "consent_version")


@dataclass(frozen=True)
class ListSpec:
    """A list of segments.yaml: its sample file, and who may join it and why they get mail.

    `reason` is Dutch source text ("omdat je je hebt aangemeld voor de nieuwsbrief"),
    translated through the `messages` catalog (context `list reason`); `consent` is the
    text a sign-up form shows for the list and `consent_version` names its wording.
    """

    name: str
    file: Path | None
    description: str
    self_service: bool = False
    reason: str = ""
    welcome: Path | None = None
    consent: str = ""
    consent_version: str = ""


@dataclass(frozen=True)
class Segment:
    """A named audience: its condition on a subscriber and what its members see."""

    name: str
    line: int
    condition: ColumnElement[bool]
    formality: Formality | None
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
                self.unknown_keys(spec, LIST_KEYS, f"lists.{name}.")
            elif spec is not None:
                self.problem(line, f"lists.{name}", "must be a file name or {file, description, …}")
            lists[name] = self.list_spec(name, spec or _Map(), line)
        return lists

    def list_spec(self, name: str, spec: dict, line: int) -> ListSpec:
        """One list's options, each checked (self_service a boolean, the texts strings)."""
        lines = getattr(spec, "key_lines", {})
        file = spec.get("file")
        path = (self.settings.subscribers_dir / file).resolve() if file else None
        self_service = spec.get("self_service", False)
        if not isinstance(self_service, bool):
            self.problem(lines.get("self_service", line), f"lists.{name}.self_service",
                         "use true or false (may people join this list themselves?)")
            self_service = False
        texts = {}
        for key in ("description", "reason", "welcome", "consent", "consent_version"):
            value = spec.get(key)
            if isinstance(value, (bool, dict, list)):
                self.problem(lines.get(key, line), f"lists.{name}.{key}", "must be text (quote it)")
                value = None
            texts[key] = " ".join(str(value).split()) if value is not None else ""
        welcome = (self.settings.root / texts["welcome"]).resolve() if texts["welcome"] else None
        return ListSpec(name, path, texts["description"], self_service, texts["reason"], welcome,
                        texts["consent"], texts["consent_version"] or _version(texts["consent"]))

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


def _version(text: str) -> str:
    """A consent text's version when segments.yaml names none: its first 12 hex of SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12] if text else ""


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
    return find_in(load_file(settings), settings, names)


def find_in(declared: SegmentsFile, settings: "Settings", names: list[str]) -> list[Segment]:
    """find_segments in an already loaded segments file."""
    known = declared.segments
    unknown = [n for n in names if n not in known]
    if unknown:
        raise AudienceError(
            f"unknown segment {', '.join(map(repr, unknown))}; {settings.segments_file} defines "
            f"{', '.join(sorted(known))}"
        )
    return [known[n] for n in dict.fromkeys(names)]


def load_lists(settings: "Settings") -> dict[str, ListSpec]:
    return load_file(settings).lists


def list_text(translations: Any, kind: Literal["reason", "consent"], text: str) -> str:
    """A list's reason or consent text in the reader's language (`messages`, context "list …")."""
    translate = translations.pgettext  # not a literal msgid: `i18n extract` reads segments.yaml itself
    return translate(f"list {kind}", text) if text else ""


def self_service_lists(settings: "Settings") -> dict[str, ListSpec]:
    """The lists people may join or leave themselves (preferences page, sign-up form)."""
    return {name: spec for name, spec in load_lists(settings).items() if spec.self_service}


def segment_lists(settings: "Settings") -> dict[str, tuple[str, ...]]:
    """Per segment, the lists that put its members in it (through `lists:` and named segments);
    empty for a segment of every list (`lists: "*"`) or of no list rule."""
    declared = load_file(settings)
    raw = _read(Path(settings.segments_file)).get("segments") or {}
    found: dict[str, tuple[str, ...]] = {}

    def walk(name: str, seen: tuple[str, ...]) -> tuple[str, ...]:
        rules = raw.get(name)
        if name in found or name in seen or not isinstance(rules, dict):
            return found.get(name, ())
        named = rules.get("lists")
        own = [] if named == "*" else _names_of(named)
        for other in _names_of(rules.get("segments")):
            if named == "*":
                break
            own += walk(other, (*seen, name))
        found[name] = tuple(dict.fromkeys(n for n in own if n in declared.lists))
        return found[name]

    for name in declared.segments:
        walk(name, ())
    return found


def _names_of(value: Any) -> list[str]:
    """The names of a `lists:`/`segments:` rule: a name, a list, or {any|all: [...]}."""
    if isinstance(value, dict):
        value = next(iter(value.values()), [])
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


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

# A segment naming a segment naming a segment …: deeper than this is refused. Each
# segment is one shared sub-query however often it is named, so depth costs little.
MAX_REFERENCE_DEPTH = 32
_OPS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt,
        ">=": operator.ge, "<=": operator.le}
_NOTHING = false()


class _Compiler:
    """Turns each segment's rules into one SQLAlchemy condition over a `subscribers` row."""

    def __init__(self, reader: _Reader, lists: dict[str, ListSpec], fields: dict[str, FieldType], raw: _Map):
        self.r = reader
        self.lists = lists
        self.fields = fields
        self.raw = raw
        self.done: dict[str, Segment | None] = {}
        self.shared: dict[str, CTE] = {}
        self.busy: list[str] = []
        self.depths: dict[str, int] = {}  # how deep each compiled segment's references go
        self.deepest: list[int] = []      # per segment being compiled: its deepest reference so far

    def segment(self, name: str) -> Segment | None:
        if name not in self.done:
            self.done[name] = self._compile(name)
        return self.done[name]

    def _compile(self, name: str) -> Segment | None:
        line = self.raw.key_lines[name]
        rules = self.raw[name]
        if not isinstance(name, str) or not NAME.match(name):
            self.r.problem(line, f"segments.{name}", "a segment name is lower-case letters, digits, - and _")
            return None
        if not isinstance(rules, _Map):
            self.r.problem(line, f"segments.{name}", "must be a mapping of rules (lists, where, …)")
            return None
        self.busy.append(name)
        self.deepest.append(0)
        where = f"segments.{name}."
        self.r.unknown_keys(rules, SEGMENT_KEYS, where)
        condition = self.criteria(rules, where, and_)
        if condition is None:
            self.r.problem(line, f"segments.{name}",
                           "has no rule; give at least one of lists, segments, tags, locales, where "
                           "(lists: \"*\" means every list)")
            condition = _NOTHING
        condition = self.excluding(rules, where, condition)
        self.busy.pop()
        self.depths[name] = depth = self.deepest.pop()
        if depth > MAX_REFERENCE_DEPTH:
            self.r.problem(line, f"segments.{name}", f"segment references nest deeper than "
                           f"{MAX_REFERENCE_DEPTH} ({depth}); name the lists or rules directly")
        return Segment(name, line, condition, self.formality(rules, where), self.view(rules, where),
                       str(rules.get("description") or ""))

    def excluding(self, rules: _Map, where: str, condition: ColumnElement[bool]) -> ColumnElement[bool]:
        exclude = rules.get("exclude")
        if isinstance(exclude, _Map):
            self.r.unknown_keys(exclude, CRITERIA, f"{where}exclude.")
            excluded = self.criteria(exclude, f"{where}exclude.", or_)
            if excluded is not None:
                return and_(condition, not_(excluded))
        elif exclude is not None:
            self.r.problem(rules.key_lines["exclude"], f"{where}exclude", "must be a mapping of rules")
        return condition

    def formality(self, rules: _Map, where: str) -> Formality | None:
        formality = rules.get("formality")
        if formality not in (None, "formal", "informal"):
            self.r.problem(rules.key_lines["formality"], f"{where}formality", "use formal or informal")
            return None
        return formality

    def view(self, rules: _Map, where: str) -> str | None:
        view = rules.get("view")
        if view is not None and not isinstance(view, str):
            self.r.problem(rules.key_lines["view"], f"{where}view", "must be a section audience name")
            return None
        return view

    def criteria(self, rules: _Map, where: str, join: Callable[..., ColumnElement[bool]]
                 ) -> ColumnElement[bool] | None:
        parts = []
        for key in CRITERIA:
            if key in rules:
                part = getattr(self, f"rule_{key}")(rules[key], rules.key_lines[key], f"{where}{key}")
                if part is not None:
                    parts.append(part)
        if not parts:
            return None
        return join(*parts) if len(parts) > 1 else parts[0]

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

    def rule_lists(self, value: Any, line: int, field: str) -> ColumnElement[bool] | None:
        if value == "*":
            return exists().where(memberships.c.subscriber_id == subscribers.c.id)
        parsed = self.names(value, line, field)
        if not parsed:
            return None
        mode, names, lines = parsed
        for name, at in zip(names, lines):
            if name not in self.lists:
                self.r.problem(at, field, f"unknown list {name!r}; segments.yaml declares "
                               f"{', '.join(self.lists) or 'no lists'} under lists:")
        return _any_or_all(mode, memberships.c.list, [memberships.c.subscriber_id == subscribers.c.id],
                           names)

    def rule_tags(self, value: Any, line: int, field: str) -> ColumnElement[bool] | None:
        parsed = self.names(value, line, field)
        if not parsed:
            return None
        mode, names, _ = parsed
        tags = json_items(subscribers.c.tags).table_valued("value").alias("tag")
        return _any_or_all(mode, tags.c.value, [], [n.strip().lower() for n in names], tags)

    def rule_segments(self, value: Any, line: int, field: str) -> ColumnElement[bool] | None:
        parsed = self.names(value, line, field)
        if not parsed:
            return None
        mode, names, lines = parsed
        parts = [part for name, at in zip(names, lines)
                 if (part := self.reference(name, at, field)) is not None]
        if not parts:
            return None
        return (or_ if mode == "any" else and_)(*parts)

    def reference(self, name: str, line: int, field: str) -> ColumnElement[bool] | None:
        """Membership of another segment: one sub-query (a CTE) shared by every reference to it."""
        if name not in self.raw:
            self.r.problem(line, field, f"unknown segment {name!r}; defined: {', '.join(map(str, self.raw))}")
        elif name in self.busy:
            self.r.problem(line, field, f"segment {name!r} refers back to itself "
                           f"({' → '.join([*self.busy, name])})")
        elif len(self.busy) >= MAX_REFERENCE_DEPTH:
            self.r.problem(line, field, f"segment references nest deeper than {MAX_REFERENCE_DEPTH} "
                           f"({' → '.join([*self.busy, name])}); name the lists or rules directly")
        elif (other := self.segment(name)) is not None:
            self.deepest[-1] = max(self.deepest[-1], self.depths.get(name, 0) + 1)
            if name not in self.shared:
                members = select(subscribers.c.id).where(other.condition)
                self.shared[name] = members.cte(f"segment_{len(self.shared)}")
            return subscribers.c.id.in_(select(self.shared[name].c.id))
        return None

    def rule_locales(self, value: Any, line: int, field: str) -> ColumnElement[bool] | None:
        parsed = self.names(value, line, field)
        if not parsed:
            return None
        _, names, lines = parsed
        parts = []
        loc = func.coalesce(subscribers.c.locale, self.r.settings.default_locale)
        for name, at in zip(names, lines):
            locale = parse_locale(name)
            if locale is None:
                self.r.problem(at, field, f"unknown locale {name!r}; use a code like nl, nl_BE, en")
            elif "_" in locale:
                parts.append(loc == locale)
            else:  # a language matches all its regional variants
                parts.append(or_(loc == locale, loc.like(f"{locale}\\_%", escape="\\")))
        return or_(*parts) if parts else None

    def rule_where(self, value: Any, line: int, field: str) -> ColumnElement[bool] | None:
        if not isinstance(value, _Map) or not value:
            self.r.problem(line, field, "must map attribute names to values, e.g. donor_tier: major")
            return None
        parts = [part for key, wanted in value.items()
                 if (part := self.comparison(str(key), wanted, value.key_lines[key],
                                             f"{field}.{key}")) is not None]
        return and_(*parts) if parts else None

    def operator(self, key: str, line: int, field: str) -> tuple[str, str, str] | None:
        """(field name, SQL operator, suffix) of a `where:` key such as last_gift_after."""
        if key in self.fields:
            return key, "=", ""
        for suffix, (sql_op, kinds) in OPERATORS.items():
            name = key[: -len(suffix)]
            if key.endswith(suffix) and name in self.fields:
                if self.fields[name] not in kinds:
                    self.r.problem(line, field, f"{suffix} does not apply to a {self.fields[name]} field")
                    return None
                return name, sql_op, suffix
        self.r.problem(line, field, f"unknown field {key!r}; declare it under fields: "
                       f"(known: {', '.join(self.fields) or 'none'}), operators: {', '.join(OPERATORS)}")
        return None

    def comparison(self, key: str, wanted: Any, line: int, field: str) -> ColumnElement[bool] | None:
        found = self.operator(key, line, field)
        if found is None:
            return None
        name, op, _ = found
        kind = self.fields[name]
        values = wanted if isinstance(wanted, list) else [wanted]
        converted = [convert_value(kind, v) for v in values]
        if any(v is None for v in converted) or not converted:
            self.r.problem(line, field, f"{wanted!r} is not a {kind}"
                           + (" (write dates as 2018-01-01)" if kind == "date" else ""))
            return None
        column = attribute(name, kind)
        if len(converted) > 1 and op in ("=", "!="):
            return column.in_(converted) if op == "=" else column.not_in(converted)
        if len(converted) > 1:
            self.r.problem(line, field, "give one value for a comparison")
            return None
        return _OPS[op](column, converted[0])


def attribute(name: str, kind: FieldType) -> ColumnElement[Any]:
    """A subscriber's attribute `name` as SQL, typed for comparison (numbers as numbers)."""
    return (json_number if kind == "number" else json_text)(subscribers.c.attributes, name)


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


def _any_or_all(mode: str, column: ColumnElement[Any], where: list[ColumnElement[bool]],
                names: list[str], *source: Any) -> ColumnElement[bool]:
    """True when the subscriber has any (or all) of `names` in `column`."""
    if mode == "any":
        query = exists().where(*where, column.in_(names))
        return query.select_from(*source) if source else query
    query = select(func.count(distinct(column))).where(*where, column.in_(names))
    if source:
        query = query.select_from(*source)
    return query.scalar_subquery() == len(set(names))
