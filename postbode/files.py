"""Files people open (builds, archives, CSV exports and reports): all of a file or none of it.

Each file is written under a temporary name in its folder and renamed into place
only when complete, so a crash or a full disk never leaves half a file behind,
and the temporary file is removed whatever went wrong. Files that hold people's
addresses or working links (the state database, outbox and build `.eml` files,
CSV exports) are readable by their owner only; `private_folder` and
`make_private` are what the modules that write them call.

Every CSV cell that a spreadsheet would read as a formula (starting with `=`,
`+`, `-`, `@`, tab or CR) is written with a leading `'` (OWASP's rule), so a
name like `=HYPERLINK(…)` stays text when the staff open the file in Excel.
"""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from postbode.errors import PostbodeError

PRIVATE_FILE = 0o600
PRIVATE_FOLDER = 0o700
# A mail file holds an address and links that unsubscribe or change that person's preferences.
PRIVATE_SUFFIXES = frozenset({".eml"})
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def private_folder(path: Path) -> Path:
    """Make `path` (and missing parents) a folder; a folder made here is owner-only (0700)."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        os.chmod(folder, PRIVATE_FOLDER)
    return path


def make_private(path: Path) -> None:
    """Make a file (created empty if missing) readable and writable by its owner only (0600).

    An existing file is never opened here: closing any descriptor of an SQLite file
    drops every lock this process holds on it (POSIX), which corrupts concurrent use.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass
    info = os.stat(path)
    # another user's shared file keeps its mode
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        os.chmod(path, PRIVATE_FILE)


def safe_cell(value: object) -> object:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def write_atomically(files: Mapping[Path, bytes]) -> None:
    """Write every file to a temporary name first and rename them only when all are written.

    `.eml` files are owner-only; the others get the usual permissions (umask).
    """
    pending: list[tuple[str, Path]] = []
    current: Path | None = None
    try:
        for current, data in files.items():
            current.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=current.parent, prefix=f".{current.name}.", suffix=".tmp")
            pending.append((temp, current))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(temp, PRIVATE_FILE if current.suffix in PRIVATE_SUFFIXES else _file_mode())
        for temp, current in pending:
            os.replace(temp, current)
    except OSError as err:
        raise PostbodeError(f"{current}: could not write it ({err.strerror or err}); "
                            "check that the output folder is writable") from err
    finally:
        _remove(temp for temp, _ in pending)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]], *,
              what: str, create_folder: bool = False) -> int:
    """Stream rows into a UTF-8 CSV file at `path`, all or nothing; return how many rows.

    `what` names the file in an error ("the report"); `create_folder` makes a missing folder.
    The file is readable by its owner only, as mkstemp makes it: it holds addresses.
    """
    path = Path(path)
    temp: str | None = None
    count = 0
    try:
        if create_folder:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([safe_cell(cell) for cell in header])
            for row in rows:
                writer.writerow([safe_cell(cell) for cell in row])
                count += 1
        os.replace(temp, path)
    except OSError as err:
        raise PostbodeError(f"{path}: could not write {what} ({err.strerror or err}); "
                            "check that the folder exists and is writable") from err
    finally:
        if temp is not None:
            _remove([temp])
    return count


def _remove(temps: Iterable[str]) -> None:
    """Remove temporary files left by a write that failed (renamed ones are gone already)."""
    for temp in temps:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass


def _file_mode() -> int:
    """What a plainly created file would get (mkstemp makes them private)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
