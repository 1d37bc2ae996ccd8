"""Engines and connections: a SQLite file by default, any SQLAlchemy URL otherwise.

One engine per database URL per process (it holds SQLAlchemy's statement cache);
connections are not pooled, so closing one closes the file. Every engine runs in
autocommit mode: a statement outside `atomic()` commits on its own, as the state
database always has, and `atomic()` alone opens transactions.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from postbode import files
from postbode.errors import PostbodeError

# Set on every new SQLite connection. secure_delete: erased data is overwritten, not left
# in free pages; WAL lets readers go on while one writer writes.
SQLITE_PRAGMAS = ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON",
                  "secure_delete=ON", "synchronous=NORMAL")

_engines: dict[str, Engine] = {}


class HasDatabase(Protocol):
    database: Path | str


Target = HasDatabase | Path | str


def database_url(target: Target, *, read_only: bool = False) -> str:
    """The SQLAlchemy URL of settings (their `database`), a SQLite path, or a URL.

    read_only: a SQLite file opened so that nothing can be written through it.
    """
    value = getattr(target, "database", target)
    text = os.fspath(value)
    if "://" in text:
        return _with_driver(text)
    path = Path(text).resolve()
    if read_only:
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    return f"sqlite:///{path}"


# A plain PostgreSQL URL means psycopg 3 (SQLAlchemy alone would pick psycopg2).
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def _with_driver(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{_DRIVERS.get(scheme, scheme)}://{rest}"


def engine_for(url: str) -> Engine:
    """The process's engine for this URL, created on first use."""
    engine = _engines.get(url)
    if engine is None:
        engine = _create(url)
        _engines[url] = engine
    return engine


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # a server that does not answer fails within seconds, not after the OS's TCP timeout
        options = {"connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {}
        return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                             connect_args=options)
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                           connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            # the first one reads the file: a file that is not a database fails here
            cursor.execute(f"PRAGMA {pragma}")
    finally:
        cursor.close()


def _prepare_file(url: str) -> None:
    """A SQLite file and its folder are created owner-only: they hold addresses and consent."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not parsed.query.get("mode"):
        path = Path(parsed.database)
        files.private_folder(path.parent)
        # before SQLite opens it: its -wal and -shm files copy the mode
        files.make_private(path)


def open_connection(target: Target, *, read_only: bool = False) -> Connection:
    """A new connection to the database; PostbodeError naming it when it cannot be opened."""
    url = database_url(target, read_only=read_only)
    try:
        _prepare_file(url)
        conn = engine_for(url).connect()
    except (OSError, exc.SQLAlchemyError) as err:
        raise _cannot_open(url, err) from err
    if read_only and conn.dialect.name == "postgresql":
        # what mode=ro is for a SQLite file: every statement of this connection may only read
        conn.exec_driver_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    return conn


def _cannot_open(url: str, err: BaseException) -> PostbodeError:
    cause = getattr(err, "orig", None) or err
    shown = make_url(url).render_as_string(hide_password=True)
    return PostbodeError(
        f"{_display(shown)}: cannot open the state database ({cause}); check the path or URL "
        "(POSTBODE_DB or [paths] database in postbode.toml), that the database server runs, "
        "and the permissions")


def shown(target: Target) -> str:
    """The state database as messages name it: its path, or its URL without the password."""
    return _display(make_url(database_url(target)).render_as_string(hide_password=True))


def _display(url: str) -> str:
    return url.removeprefix("sqlite:///").removeprefix("file:").split("?mode=")[0]


def is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def is_sqlite(conn: Connection) -> bool:
    return conn.dialect.name == "sqlite"


def checkpoint(conn: Connection) -> bool:
    """Copy the SQLite write-ahead log into the database file and empty it (after an erasure,
    so erased bytes stay in neither file). True when the log is empty now; other engines: True."""
    if not is_sqlite(conn):
        return True
    busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return busy == 0


def wait_briefly(conn: Connection, seconds: float) -> None:
    """Let this connection wait at most `seconds` for another writer's lock (web requests:
    a busy database is answered 503 quickly rather than after half a minute)."""
    if is_sqlite(conn):
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(seconds * 1000)}")
    else:
        conn.exec_driver_sql(f"SET lock_timeout = '{int(seconds * 1000)}ms'")
