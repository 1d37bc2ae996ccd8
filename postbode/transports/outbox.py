"""The outbox: one .eml file per message under <folder>/<campaign>/, no server needed."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

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

    def open(self) -> None:
        target = self.folder / campaign_folder_name(self.campaign)
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise TransportError(
                f"outbox folder {target} cannot be created ({err.strerror}); "
                "check the path in the transport URL and its permissions"
            ) from err
        self._target = target

    def close(self) -> None:
        self._target = None

    def send_batch(self, messages: Sequence["OutgoingMessage"]) -> list[SendResult]:
        if self._target is None:
            self.open()
        return [self._write(message) for message in messages]

    def _write(self, message: "OutgoingMessage") -> SendResult:
        assert self._target is not None
        name = file_name(message.message_id)
        final = self._target / name
        temporary = self._target / f".{name}.{os.getpid()}.tmp"
        try:
            temporary.write_bytes(message.as_bytes())
            try:
                # a hard link fails if the file exists: an earlier run already wrote this mail
                os.link(temporary, final)
            except FileExistsError:
                return SendResult(message.message_id, Status.SENT, None,
                                  "already in the outbox, left as it was", name)
            finally:
                temporary.unlink(missing_ok=True)
        except OSError as err:
            raise TransportError(
                f"cannot write {final} ({err.strerror}); free disk space or fix the folder's permissions"
            ) from err
        return SendResult(message.message_id, Status.SENT, None, "written to the outbox", name)
