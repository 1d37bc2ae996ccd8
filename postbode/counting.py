"""Plan counts: how a segment count's rows are tallied, and the SQL of the last count, kept.

`subscribers list --segment S --count` should answer at once, but importing SQLAlchemy
takes longer than that alone. So a full count on a SQLite database
(`audience.plan_counts(..., keep=True)`) leaves its SQL, its parameters and its tally
rules here, under a key made of everything they depend on: postbode's own files and
SQLAlchemy's, the settings, segments.yaml and the segments asked for. The next count
with the same key runs that SQL through the standard library's sqlite3, read-only,
on a database at the same schema revision, and tallies the rows the same way
(`tally`, which the full count uses too). Anything else (PostgreSQL, another key, a
missing or unreadable entry, another revision) takes the full way.

This module imports nothing of SQLAlchemy and nothing of postbode.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

if TYPE_CHECKING:
    from postbode.config import Settings

CACHE_FILE = "count-cache.json"   # next to the SQLite database
KEPT = 16                         # entries kept: one per combination of segments asked
PACKAGE = Path(__file__).resolve().parent


@dataclass
class PlanCounts:
    """What a send to some segments would reach: recipients per segment × locale, and who is left out."""

    recipients: dict[tuple[str, str], int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)
    marked: dict[str, int] = field(default_factory=dict)    # by the caller's mark (see plan_counts)

    @property
    def total(self) -> int:
        return sum(self.recipients.values())


def sent_locale(locale: str | None, languages: Iterable[str], default: str) -> str:
    """The subscriber's own locale when its language is one we send in, else the default."""
    if locale and locale.split("_")[0] in set(languages):
        return locale
    return default


@dataclass(frozen=True)
class TallyRules:
    """How rows of (segment index, locale, consent, suppressed[, mark], count) become counts."""

    names: tuple[str, ...]          # the segments asked for, by index
    subscribed: str                 # the one consent state that receives mail
    languages: tuple[str, ...]      # the languages sent in
    default_locale: str


def tally(rows: Iterable[Sequence[Any]], rules: TallyRules, *, marks: bool = False,
          leave_out_marked: bool = True) -> PlanCounts:
    """Recipients per (segment, locale); the others by consent state, or `suppressed`.

    With `marks`, each row has a mark before its count: marked recipients are counted
    per mark and, with `leave_out_marked`, are not recipients.
    """
    recipients: Counter[tuple[str, str]] = Counter()
    left_out: Counter[str] = Counter()
    marked: Counter[str] = Counter()
    locales: dict[str | None, str] = {}
    for row in rows:
        seg, locale, consent, suppressed, count = (*row[:4], row[-1])
        found = row[4] if marks else None
        if consent != rules.subscribed:
            left_out[consent] += count
        elif suppressed:
            left_out["suppressed"] += count
        else:
            if found is not None:
                marked[found] += count
            if found is None or not leave_out_marked:
                if locale not in locales:
                    locales[locale] = sent_locale(locale, rules.languages, rules.default_locale)
                recipients[(rules.names[seg], locales[locale])] += count
    return PlanCounts(dict(sorted(recipients.items())), dict(sorted(left_out.items())),
                      dict(sorted(marked.items())))


# ---------------------------------------------------------------- the kept SQL

def keep(settings: "Settings", segments: Sequence[str], revision: str | None, sql: str,
         params: Sequence[Any], rules: TallyRules) -> None:
    """Keep a full count's SQL for the next count of the same segments (best effort)."""
    path = _cache_path(settings)
    if path is None or revision is None:
        return
    entries = _read(path)
    entries[_key(settings, segments)] = {"revision": revision, "sql": sql, "params": list(params),
                                         "rules": asdict(rules), "used": time.time()}
    newest = sorted(entries.items(), key=lambda item: item[1].get("used", 0), reverse=True)[:KEPT]
    try:
        _write(path, dict(newest))
    except (OSError, TypeError, ValueError):
        pass   # a state folder that is read-only, or a value JSON cannot hold: count in full next time


def recall(settings: "Settings", segments: Sequence[str]) -> PlanCounts | None:
    """The counts from the kept SQL, or None when there is none to trust."""
    path = _cache_path(settings)
    if path is None:
        return None
    entry = _read(path).get(_key(settings, segments))
    if not isinstance(entry, dict):
        return None
    try:
        rules = TallyRules(**{**entry["rules"], "names": tuple(entry["rules"]["names"]),
                              "languages": tuple(entry["rules"]["languages"])})
        rows = _run(Path(settings.database), entry["revision"], entry["sql"], entry["params"])
    except (KeyError, TypeError, sqlite3.Error):
        return None
    return None if rows is None else tally(rows, rules)


def _run(database: Path, revision: str, sql: str, params: list) -> list[tuple] | None:
    """The rows of `sql` on the database opened read-only; None if its revision differs."""
    if not database.is_file():
        return None
    conn = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        found = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        if found != [(revision,)]:
            return None
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _cache_path(settings: "Settings") -> Path | None:
    """Where a SQLite database's kept counts are; None for a database URL."""
    database = os.fspath(settings.database)
    if "://" in database:
        return None
    return Path(database).resolve().with_name(CACHE_FILE)


def _key(settings: "Settings", segments: Sequence[str]) -> str:
    """Everything the kept SQL and its tally depend on, hashed."""
    digest = hashlib.sha256()
    for part in (_code_stamp(), repr(settings), _file_bytes(Path(settings.segments_file)),
                 "\0".join(segments)):
        digest.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        digest.update(b"\1")
    return digest.hexdigest()


def _code_stamp() -> str:
    """postbode's and SQLAlchemy's files as they are now (any change makes another key)."""
    stamps = []
    for folder, _dirs, names in os.walk(PACKAGE):
        for name in sorted(names):
            if name.endswith(".py"):
                info = os.stat(os.path.join(folder, name))
                stamps.append(f"{folder}/{name}:{info.st_mtime_ns}:{info.st_size}")
    spec = find_spec("sqlalchemy")
    if spec is not None and spec.origin:
        info = os.stat(spec.origin)
        stamps.append(f"{spec.origin}:{info.st_mtime_ns}:{info.st_size}")
    return "\n".join(sorted(stamps))


def _file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, entries: dict) -> None:
    """Write the cache under a temporary name, then rename it: a reader sees old or new."""
    text = json.dumps(entries, ensure_ascii=False)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
