"""Files people open (builds, archives, CSV exports and reports): all of a file or none of it.

Each file is written under a temporary name in its folder and renamed into place
only when complete, so a crash or a full disk never leaves half a file behind.
"""
from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from postbode.errors import PostbodeError


def write_atomically(files: Mapping[Path, bytes]) -> None:
    """Write every file to a temporary name first and rename them only when all are written."""
    pending: list[tuple[str, Path]] = []
    current: Path | None = None
    mode = _file_mode()
    try:
        for current, data in files.items():
            current.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=current.parent, prefix=f".{current.name}.", suffix=".tmp")
            pending.append((temp, current))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(temp, mode)
        for temp, current in pending:
            os.replace(temp, current)
    except OSError as err:
        for temp, _ in pending:
            if os.path.exists(temp):
                os.unlink(temp)
        raise PostbodeError(f"{current}: could not write it ({err.strerror or err}); "
                            "check that the output folder is writable") from err


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
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                count += 1
        os.replace(temp, path)
    except OSError as err:
        raise PostbodeError(f"{path}: could not write {what} ({err.strerror or err}); "
                            "check that the folder exists and is writable") from err
    finally:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
    return count


def _file_mode() -> int:
    """What a plainly created file would get (mkstemp makes them private)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
