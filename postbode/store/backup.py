"""`backup FILE`: a consistent copy of the state database, taken while others keep writing."""
from __future__ import annotations

import shlex
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from postbode import files
from postbode.errors import PostbodeError
from postbode.store.engine import Target, database_url


@dataclass(frozen=True)
class Backup:
    """What `backup` did: wrote `path` (SQLite), or names the command that does it (PostgreSQL)."""

    path: Path
    command: str | None = None   # set when postbode does not copy the database itself
    pages: int = 0


def backup(target: Target, path: Path) -> Backup:
    """Copy a SQLite database with its online backup API; for PostgreSQL, the pg_dump command."""
    url = make_url(database_url(target))
    if url.get_backend_name() == "postgresql":
        return Backup(path, command=pg_dump_command(url, path))
    if url.get_backend_name() != "sqlite" or not url.database:
        raise PostbodeError(f"backup knows SQLite files and PostgreSQL, not {url.get_backend_name()}; "
                            "use your database's own backup tool")
    return _sqlite_backup(Path(url.database), path)


def pg_dump_command(url, path: Path) -> str:
    """pg_dump's command line for this database (the password comes from PGPASSWORD, never here)."""
    plain = URL.create("postgresql", username=url.username, host=url.host, port=url.port,
                       database=url.database, query=url.query)
    target = plain.render_as_string(hide_password=False)
    return f"pg_dump --format=custom --file {shlex.quote(str(path))} {shlex.quote(target)}"


def _sqlite_backup(source: Path, path: Path) -> Backup:
    if not source.is_file():
        raise PostbodeError(f"{source}: no state database there; check POSTBODE_DB or "
                            "[paths] database in postbode.toml")
    if path.resolve() == source.resolve():
        raise PostbodeError(f"{path}: that is the database itself; name a new file for the copy")
    files.private_folder(path.parent)
    partial = path.with_name(path.name + ".partial")
    files.make_private(partial)
    try:
        with closing(sqlite3.connect(source, timeout=30)) as src, \
                closing(sqlite3.connect(partial)) as dst:
            # in one step, under one read snapshot: in WAL mode the senders go on writing
            src.backup(dst)
            pages = dst.execute("PRAGMA page_count").fetchone()[0]
        partial.replace(path)
    except (sqlite3.Error, OSError) as err:
        partial.unlink(missing_ok=True)
        raise PostbodeError(f"{path}: the backup failed ({err}); check the folder's free space "
                            "and permissions, then run it again") from err
    return Backup(path, pages=pages)
