"""Image files next to a newsletter: their size from the file header, and the copy readers get."""
from __future__ import annotations

import io
import struct
import typing
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image


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


# --- the image as readers get it -----------------------------------------------------

MAX_WIDTH = 1200            # twice the 600 px column: sharp on high-density screens, no more
JPEG_QUALITY = 82
PNG_PALETTE_ABOVE = 400_000  # a PNG still bigger than this after resizing is reduced to 256 colours
REMOTE_WARN_BYTES = 1_000_000


@dataclass(frozen=True)
class SentImage:
    """A local image as the mail's readers download it: resized and recompressed."""

    data: bytes
    width: int
    height: int
    original_bytes: int
    original_width: int
    original_height: int
    mimetype: str
    recompressed: bool = False   # False: the file is sent as written


def for_mail(path: Path, max_width: int = MAX_WIDTH) -> SentImage:
    """The image at `path` at most `max_width` pixels wide and recompressed (cached per file version)."""
    stat = path.stat()
    return _for_mail(str(path), stat.st_mtime_ns, stat.st_size, max_width)


@lru_cache(maxsize=32)
def _for_mail(path: str, mtime_ns: int, size: int, max_width: int) -> SentImage:
    raw = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(raw)) as image:
            original, kind = image.size, image.format or "PNG"
            if kind == "GIF" or (image.width <= max_width and size <= PNG_PALETTE_ABOVE):
                # small enough, or an (animated) GIF Pillow would flatten: sent as written
                return SentImage(raw, *original, size, *original, Image.MIME.get(kind, "image/png"))
            data, sent = _recompressed(image, kind, max_width)
    except (OSError, ValueError, Image.DecompressionBombError):
        # not an image Pillow can read: sent as written (the mail checks judge the format)
        width, height = image_size(Path(path)) or (0, 0)
        return SentImage(raw, width, height, size, width, height, "application/octet-stream")
    if len(data) >= size and sent == original:
        return SentImage(raw, *original, size, *original, Image.MIME.get(kind, "image/png"))
    return SentImage(data, *sent, size, *original, Image.MIME.get(kind, "image/png"), True)


def _recompressed(image: Image.Image, kind: str, max_width: int) -> tuple[bytes, tuple[int, int]]:
    """The image scaled to `max_width` (never up) and saved again in its own format."""
    if image.width > max_width:
        image = image.resize((max_width, max(1, round(image.height * max_width / image.width))),
                             Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if kind == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
        return out.getvalue(), image.size
    image.save(out, "PNG", optimize=True)
    if out.tell() > PNG_PALETTE_ABOVE and image.mode in ("RGB", "RGBA", "L", "LA"):
        out = io.BytesIO()
        image.quantize(256, method=Image.Quantize.FASTOCTREE).save(out, "PNG", optimize=True)
    return out.getvalue(), image.size
