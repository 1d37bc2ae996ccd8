"""Image files next to a newsletter: their size, read from the file header."""
from __future__ import annotations

import struct
import typing
from pathlib import Path


def image_size(path: Path) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG file, read from its header (None if unknown)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                return struct.unpack(">II", head[16:24])
            if head[:6] in (b"GIF87a", b"GIF89a"):
                return struct.unpack("<HH", head[6:10])
            if head.startswith(b"\xff\xd8"):
                fh.seek(2)
                return _jpeg_size(fh)
    except OSError:
        return None
    return None


def _jpeg_size(fh: typing.BinaryIO) -> tuple[int, int] | None:
    """Walk JPEG segments to the frame header that holds the size."""
    while True:
        marker = fh.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            return None
        length_bytes = fh.read(2)
        if len(length_bytes) < 2:
            return None
        length = struct.unpack(">H", length_bytes)[0]
        if marker[1] in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">xHH", fh.read(5))
            return width, height
        fh.seek(length - 2, 1)
