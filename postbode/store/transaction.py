"""`atomic(conn)`: the one way to run a transaction, savepoint-aware when nested."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection

from postbode.store.sql import driver_sql

_DEPTH = "postbode.atomic_depth"


def _begin_statement(conn: Connection) -> str:
    # SQLite: take the write lock at the start, so two writers queue on busy_timeout
    # instead of one failing half-way with "database is locked".
    return "BEGIN IMMEDIATE" if conn.dialect.name == "sqlite" else "BEGIN"


@contextmanager
def atomic(conn: Connection) -> Iterator[Connection]:
    """Run the block in one write transaction, or in a savepoint when one is already open.

    Leaving the block commits (or releases the savepoint); an exception rolls it back.
    """
    depth = conn.info.get(_DEPTH, 0)
    start, commit, rollback = _statements(conn, depth)
    # On the driver's own cursor: through SQLAlchemy, BEGIN and COMMIT cost more than a
    # journal claim's statements (errors are still raised as SQLAlchemy's)
    driver_sql(conn, start)
    conn.info[_DEPTH] = depth + 1
    try:
        yield conn
    except BaseException:
        conn.info[_DEPTH] = depth
        for statement in rollback:
            driver_sql(conn, statement)
        raise
    conn.info[_DEPTH] = depth
    try:
        driver_sql(conn, commit)
    except BaseException:
        if depth == 0 and conn.connection.dbapi_connection is not None:
            _quiet_rollback(conn)
        raise


def _quiet_rollback(conn: Connection) -> None:
    """After a failed COMMIT: end the transaction if the engine left it open."""
    try:
        conn.exec_driver_sql("ROLLBACK")
    except Exception:  # noqa: BLE001 - nothing was open; the COMMIT's error is the one to report
        pass


def _statements(conn: Connection, depth: int) -> tuple[str, str, tuple[str, ...]]:
    if depth == 0:
        return _begin_statement(conn), "COMMIT", ("ROLLBACK",)
    name = f"postbode_{depth}"
    return (f"SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}",
            (f"ROLLBACK TO SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}"))


def in_atomic(conn: Connection) -> bool:
    """True inside an `atomic()` block of this connection."""
    return conn.info.get(_DEPTH, 0) > 0


@contextmanager
def read_snapshot(conn: Connection) -> Iterator[Connection]:
    """Every read in the block sees the database as it was at its first read (no writes).

    SQLite (WAL) keeps one snapshot for a deferred transaction; PostgreSQL needs
    REPEATABLE READ for that.
    """
    begin = "BEGIN" if conn.dialect.name == "sqlite" else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    conn.exec_driver_sql(begin)
    try:
        yield conn
    finally:
        conn.exec_driver_sql("ROLLBACK")
