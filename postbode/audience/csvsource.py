"""A CSV file read as a stream of records: encoding per line, delimiter from the header.

The file is never read whole, so memory stays flat whatever its size. Each
physical line is decoded on its own: UTF-8 where it is valid UTF-8, else
Windows-1252. A file that is Windows-1252 throughout is reported as such; a
file that mixes the two (an Excel export pasted into a UTF-8 file) is reported
with the lines that were read as Windows-1252, so "José" never arrives as
"JosÃ©" without a word. UTF-16 files (with a byte order mark) are decoded as a
whole stream instead.
"""
from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

DELIMITERS = (";", ",", "\t")
# Line numbers kept for the report of a mixed file; the rest are only counted.
MAX_LINES_KEPT = 1000
# A field longer than this is not a name or an address: the csv module's own limit, raised
# from 128 kB so a long notes column does not stop the file, but still bounded.
FIELD_LIMIT = 1_000_000


@dataclass
class Encoding:
    """What the file's bytes turned out to be, filled in while it is read."""

    bom: str = ""                    # "UTF-8 (BOM)", "UTF-16" or ""
    utf8_lines: int = 0              # lines with non-ASCII text that were valid UTF-8
    cp1252_lines: int = 0            # lines that were not valid UTF-8
    cp1252_numbers: list[int] = field(default_factory=list)

    @property
    def mixed(self) -> bool:
        return self.utf8_lines > 0 and self.cp1252_lines > 0

    @property
    def name(self) -> str:
        """The encoding as the summary shows it."""
        if self.bom:
            return self.bom + (", some lines Windows-1252" if self.cp1252_lines else "")
        if self.mixed:
            return "mixed: UTF-8, some lines Windows-1252"
        return "Windows-1252" if self.cp1252_lines else "UTF-8"


def open_lines(path: Path, encoding: Encoding) -> Iterator[str]:
    """The file's lines as text, decoded line by line (see the module docstring)."""
    fh = path.open("rb")
    try:
        start = fh.read(4)
        if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding.bom = "UTF-16"
            fh.seek(0)
            yield from io.TextIOWrapper(fh, encoding="utf-16", newline="")
            return
        if start.startswith(codecs.BOM_UTF8):
            encoding.bom = "UTF-8 (BOM)"
            fh.seek(len(codecs.BOM_UTF8))
        else:
            fh.seek(0)
        yield from _decoded(fh, encoding)
    finally:
        fh.close()


def _decoded(fh: IO[bytes], encoding: Encoding) -> Iterator[str]:
    for number, raw in enumerate(fh, 1):
        if raw.isascii():
            yield raw.decode("ascii")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            encoding.cp1252_lines += 1
            if len(encoding.cp1252_numbers) < MAX_LINES_KEPT:
                encoding.cp1252_numbers.append(number)
            # cp1252 leaves five bytes undefined; Latin-1 reads every byte
            text = raw.decode("cp1252", errors="strict") if _cp1252_ok(raw) else raw.decode("latin-1")
        else:
            encoding.utf8_lines += 1
        yield text


def _cp1252_ok(raw: bytes) -> bool:
    return not any(b in raw for b in (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d"))


def sniff_delimiter(header: str) -> str:
    """The delimiter the header line uses most, outside quotes (a single column: comma)."""
    chars, in_quotes = [], False
    for ch in header:
        if ch == '"':
            in_quotes = not in_quotes
        elif ch in "\r\n" and not in_quotes:
            break
        elif not in_quotes:
            chars.append(ch)
    counts = {d: chars.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


class Records:
    """(first line number, fields) of every CSV record; quoted fields may span lines."""

    def __init__(self, lines: Iterator[str], delimiter: str):
        csv.field_size_limit(FIELD_LIMIT)
        self.reader = csv.reader(lines, delimiter=delimiter)

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        reader = self.reader
        start = 1
        for fields in reader:
            yield start, fields
            start = reader.line_num + 1
