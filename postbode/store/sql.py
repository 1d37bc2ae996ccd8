"""The few SQL constructs whose spelling differs between engines, compiled per dialect."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Float, String, Table, bindparam, event, exc
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
    # imported here: the PostgreSQL dialect costs every SQLite command 50 ms at start-up
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql as dialect
    else:
        from sqlalchemy.dialects import sqlite as dialect
    # rowcount says whether the row was new: SQLAlchemy keeps it for INSERT only when asked
    return dialect.insert(table).on_conflict_do_nothing().execution_options(preserve_rowcount=True)


class json_text(FunctionElement):
    """`json_text(column, key)`: the value of `key` in a JSON object column, as stored."""

    name = "json_text"
    inherit_cache = True
    type = String()

    def __init__(self, column: Any, key: str):
        # the path for SQLite, the key for PostgreSQL; each dialect renders only its own
        super().__init__(column, bindparam(None, f'$."{key}"', String()), bindparam(None, key, String()))


class json_number(json_text):
    """json_text, compared as a number."""

    name = "json_number"
    inherit_cache = True
    type = Float()


@compiles(json_text, "sqlite")
@compiles(json_number, "sqlite")
def _json_value_sqlite(element: json_text, compiler: Any, **kw: Any) -> str:
    column, path, _ = element.clauses
    return f"json_extract({compiler.process(column, **kw)}, {compiler.process(path, **kw)})"


@compiles(json_text)
def _json_text_default(element: json_text, compiler: Any, **kw: Any) -> str:
    column, _, key = element.clauses
    return f"({compiler.process(column, **kw)} ->> {compiler.process(key, **kw)})"


@compiles(json_number)
def _json_number_default(element: json_number, compiler: Any, **kw: Any) -> str:
    return f"CAST({_json_text_default(element, compiler, **kw)} AS DOUBLE PRECISION)"


_COMPILED: dict[tuple[object, str], tuple[str, tuple[str, ...] | None, dict]] = {}


def _compiled(conn: Connection, statement: Any, cache: bool,
              columns: tuple[str, ...] = ()) -> tuple[str, tuple[str, ...] | None, dict]:
    """(SQL, parameter order or None for named parameters, default values) for the dialect.

    `columns`: for an INSERT without values, the columns the rows give.
    """
    key = (statement, conn.dialect.name, columns)
    found = _COMPILED.get(key) if cache else None
    if found is None:
        if isinstance(statement, Insert) and not statement._values and columns:
            # only the columns the rows give: an id left out is the database's to assign
            # (PostgreSQL refuses the NULL a compiled all-columns INSERT would send)
            statement = statement.values({name: bindparam(name) for name in columns})
        compiled = statement.compile(dialect=conn.dialect)
        found = (str(compiled), compiled.positiontup, dict(compiled.params))
        if cache:
            _COMPILED[key] = found
    return found


def _driver_params(found: tuple[str, tuple[str, ...] | None, dict], row: dict) -> Any:
    _sql, order, defaults = found
    if order is None:
        return {**defaults, **row}
    return tuple(row[name] if name in row else defaults[name] for name in order)


def execute_many(conn: Connection, statement: Any, rows: list[dict], *, cache: bool = True) -> Any:
    """Run one Core statement for many rows of plain values (ints, floats, text, None).

    The statement is compiled once for the connection's dialect and the rows handed to the
    driver as they are: SQLAlchemy's per-row parameter processing is most of the cost of a
    journal claim otherwise. Values that need a type's processing (JSON) must not use it.
    """
    found = _compiled(conn, statement, cache, tuple(rows[0]) if rows else ())
    return conn.exec_driver_sql(found[0], [_driver_params(found, row) for row in rows],
                                execution_options={"preserve_rowcount": True})


def driver_rows(conn: Connection, statement: Any, values: dict) -> list[tuple]:
    """Run a module-level Core statement on the driver's own cursor; its rows as plain tuples.

    For the send loop's few statements, run once or more per message: building and
    executing them through SQLAlchemy costs twenty to a hundred times what the
    database does. Plain values only (no type processing), as for `execute_many`.
    """
    found = _compiled(conn, statement, True)
    cursor = _driver_run(conn, found[0], _driver_params(found, values))
    return cursor.fetchall() if cursor.description else []


def driver_many(conn: Connection, statement: Any, rows: list[dict]) -> int:
    """`driver_rows` for many parameter rows of a statement that returns none; rows affected."""
    if not rows:
        return 0
    found = _compiled(conn, statement, True)
    return _driver_run(conn, found[0], [_driver_params(found, row) for row in rows], many=True).rowcount


def driver_fetch(conn: Connection, sql: str, params: Any) -> list[tuple]:
    """SQL compiled elsewhere, with the driver's parameters, on the driver's cursor; its rows."""
    cursor = _driver_run(conn, sql, params)
    return cursor.fetchall() if cursor.description else []


def driver_sql(conn: Connection, sql: str) -> None:
    """One statement of plain SQL without parameters (BEGIN, COMMIT) on the driver's cursor."""
    _driver_run(conn, sql, ())


_CURSOR = "postbode.driver_cursor"


def _driver_run(conn: Connection, sql: str, params: Any, *, many: bool = False) -> Any:
    """Run on the driver's cursor, kept with the connection; errors raised as SQLAlchemy's."""
    dbapi_connection = conn.connection.dbapi_connection
    kept = conn.info.get(_CURSOR)
    if kept is None or kept[0] is not dbapi_connection:   # first use, or a new driver connection
        kept = conn.info[_CURSOR] = (dbapi_connection, dbapi_connection.cursor())
    cursor = kept[1]
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
    except conn.dialect.loaded_dbapi.Error as err:
        raise exc.DBAPIError.instance(sql, params, err, conn.dialect.loaded_dbapi.Error,
                                      dialect=conn.dialect) from err
    return cursor


def run_seen(conn: Connection, statement: Any) -> tuple[list, str, tuple]:
    """Run a Core statement; its rows, with the SQL and parameters the driver was given.

    Seen on the way to the driver (after SQLAlchemy's processing of every value), so
    that SQL run again with those parameters is this very query (`postbode.counting`).
    """
    seen: list[tuple[str, Any]] = []

    def before(_conn, _cursor, sql, parameters, _context, _many) -> None:
        seen.append((sql, parameters))

    event.listen(conn, "before_cursor_execute", before)
    try:
        rows = conn.execute(statement).all()
    finally:
        event.remove(conn, "before_cursor_execute", before)
    sql, parameters = seen[-1]
    return rows, sql, tuple(parameters)
