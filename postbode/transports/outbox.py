"""The outbox: one .eml file per message under <folder>/<campaign>/, no server needed."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

from postbode import files
from postbode.errors import TransportError
from postbode.transports.base import SendResult, Status, Transport

if TYPE_CHECKING:
    from postbode.message import OutgoingMessage
    from postbode.transports import TransportUrl

NO_CAMPAIGN = "no-campaign"


def from_url(url: "TransportUrl", settings, env: Mapping[str, str]) -> "OutboxTransport":
    """outbox://outbox (relative to the project root) or outbox:///absolute/folder."""
    url.options({})
    if url.user or url.password or url.port:
        raise url.error("the outbox takes only a folder, e.g. outbox://outbox")
    relative = (url.host + url.path).strip("/") if url.host else ""
    if url.host:
        folder = Path(settings.root) / relative
    elif url.path:
        folder = Path(url.path)
    else:
        raise url.error("name the outbox folder, e.g. outbox://outbox")
    return OutboxTransport(folder)


def file_name(message_id: str) -> str:
    """The file a message is written to: named after its Message-ID, so the same mail lands once."""
    return hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:32] + ".eml"


def campaign_folder_name(campaign: str | None) -> str:
    """A campaign id made safe as a folder name."""
    if not campaign:
        return NO_CAMPAIGN
    return re.sub(r"[^A-Za-z0-9._-]+", "-", campaign).strip(".-") or NO_CAMPAIGN


class OutboxTransport(Transport):
    """Writes each message atomically (temporary file, then a link); never overwrites a file."""

    scheme = "outbox"
    max_batch = 500

    def __init__(self, folder: Path):
        self.folder = folder
        self._target: Path | None = None
        self._dir_fd: int | None = None       # names below are relative to it: fewer path lookups

    def open(self) -> None:
        if self._dir_fd is not None:
            return
        target = self.folder / campaign_folder_name(self.campaign)
        try:
            files.private_folder(target)  # mails hold addresses and working links
            self._dir_fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            raise TransportError(
                f"outbox folder {target} cannot be created ({err.strerror}); "
                "check the path in the transport URL and its permissions"
            ) from err
        self._target = target

    def close(self) -> None:
        dir_fd, self._dir_fd = self._dir_fd, None
        if dir_fd is not None:
            os.close(dir_fd)

    def send_batch(self, messages: Sequence["OutgoingMessage"]) -> list[SendResult]:
        self.open()
        return [self._write(message) for message in messages]

    def _write(self, message: "OutgoingMessage") -> SendResult:
        name = file_name(message.message_id)
        temporary = f".{name}.{os.getpid()}.tmp"
        dir_fd = self._dir_fd
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, files.PRIVATE_FILE, dir_fd=dir_fd)
            try:
                _write_all(fd, message.as_bytes())
            finally:
                os.close(fd)
            try:
                # a hard link fails if the file exists: an earlier run already wrote this mail
                os.link(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except FileExistsError:
                return SendResult(message.message_id, Status.SENT, None,
                                  "already in the outbox, left as it was", name)
            finally:
                os.unlink(temporary, dir_fd=dir_fd)
        except OSError as err:
            raise TransportError(
                f"cannot write {self._target}/{name} ({err.strerror}); "
                "free disk space or fix the folder's permissions"
            ) from err
        return SendResult(message.message_id, Status.SENT, None, "written to the outbox", name)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def remove_messages(folder: Path, campaign: str | None, message_ids: Iterable[str]) -> int:
    """Delete the files of these messages of one campaign (erasure); returns how many were there."""
    target = folder / campaign_folder_name(campaign)
    removed = 0
    for message_id in message_ids:
        try:
            (target / file_name(message_id)).unlink()
        except FileNotFoundError:
            continue
        removed += 1
    return removed


def remove_mentioning(folder: Path, needles: Iterable[str]) -> int:
    """Delete every .eml file under `folder` that names one of `needles` (ignoring case).

    Catches what no journal row points to: test mails, and files of campaigns whose
    journal is gone. Returns how many files were deleted.
    """
    wanted = [n.lower().encode("utf-8") for n in needles if n]
    if not wanted or not folder.is_dir():
        return 0
    removed = 0
    for path in folder.rglob("*.eml"):
        try:
            content = path.read_bytes().lower()
            if any(n in content for n in wanted):
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
