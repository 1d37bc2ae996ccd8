"""The few SQL constructs whose spelling differs between engines, compiled per dialect."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.functions import FunctionElement


class json_items(FunctionElement):
    """The elements of a JSON array column as text rows: `json_items(col).table_valued("value")`."""

    name = "json_items"
    inherit_cache = True


@compiles(json_items, "sqlite")
def _json_items_sqlite(element: json_items, compiler: Any, **kw: Any) -> str:
    return f"json_each({compiler.process(element.clauses, **kw)})"


@compiles(json_items)
def _json_items_default(element: json_items, compiler: Any, **kw: Any) -> str:
    return f"json_array_elements_text({compiler.process(element.clauses, **kw)})"


def insert_ignore(conn: Connection, table: Table) -> Insert:
    """INSERT that skips rows whose key already exists (ON CONFLICT DO NOTHING)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()
