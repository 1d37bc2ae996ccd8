"""`bounces fetch`: read a bounce mailbox over IMAP (imap-tools), apply what came back.

Entry point: `fetch(settings, url, env) -> FetchSummary`. Messages are read with
BODY.PEEK, so nothing is marked read; applied bounces and complaints are moved to
`[bounces] processed_folder`; every other message (ordinary mail, auto-replies,
bounces about no mail of ours) stays where it was, unread. Each message read is
remembered, so reading it again changes nothing.

    imaps://user@imap.example.org/INBOX           implicit TLS, port 993
    imap://user@imap.example.org/INBOX            STARTTLS, port 143
    …?cafile=/path/ca.pem                         your own CA
The password comes from POSTBODE_IMAP_PASSWORD (never from the URL).
"""
from __future__ import annotations

import logging
import ssl
from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from postbode.bounces import BounceError, store
from postbode.bounces.parse import message_key
from postbode.bounces.process import Outcome, process_message
from postbode.config import Settings
from postbode.store import connect

log = logging.getLogger(__name__)
PASSWORD_VARIABLE = "POSTBODE_IMAP_PASSWORD"
BATCH = 50       # messages per FETCH command


@dataclass(frozen=True)
class Mailbox:
    """Where to read: from the --imap URL."""

    host: str
    port: int
    user: str
    folder: str
    tls: str            # tls | starttls
    cafile: str | None
    shown: str


@dataclass
class FetchSummary:
    read: int = 0
    moved: int = 0
    by_outcome: Counter = field(default_factory=Counter)
    folder: str = ""

    def describe(self) -> str:
        parts = ", ".join(f"{n} {name}" for name, n in sorted(self.by_outcome.items()))
        return (f"read {self.read} message(s) ({parts or 'none new'}); moved {self.moved} "
                f"processed bounce(s) to {self.folder}")


def parse_url(url: str) -> Mailbox:
    """The mailbox an imaps:// or imap:// URL names; BounceError saying what is wrong."""
    parts = urlsplit(url)
    example = "e.g. imaps://bounces@imap.example.org/INBOX"
    if parts.scheme not in ("imaps", "imap"):
        raise BounceError(f"--imap {url!r}: use imaps:// (or imap:// with STARTTLS), {example}")
    if parts.password:
        raise BounceError(f"--imap: leave the password out of the URL; set {PASSWORD_VARIABLE}")
    if not parts.hostname or not parts.username:
        raise BounceError(f"--imap {url!r}: name the user and the server, {example}")
    options = dict(parse_qsl(parts.query))
    unknown = sorted(set(options) - {"cafile"})
    if unknown:
        raise BounceError(f"--imap: unknown option {unknown[0]!r}; the only one is cafile=PATH")
    tls = "tls" if parts.scheme == "imaps" else "starttls"
    try:
        port = parts.port or (993 if tls == "tls" else 143)
    except ValueError:
        raise BounceError(f"--imap {url!r}: the port is not a number") from None
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return Mailbox(parts.hostname, port, unquote(parts.username), folder, tls,
                   options.get("cafile"), f"{parts.scheme}://{parts.username}@{parts.netloc.split('@')[-1]}/{folder}")


def fetch(settings: Settings, url: str, env: Mapping[str, str]) -> FetchSummary:
    """Process every message in the folder that was not read before; move applied bounces."""
    box = parse_url(url)
    password = env.get(PASSWORD_VARIABLE)
    if not password:
        raise BounceError(f"set {PASSWORD_VARIABLE} to the password of {box.user} on {box.host}")
    from imap_tools import MailboxLoginError
    from imap_tools.errors import ImapToolsError

    summary = FetchSummary(folder=settings.bounce_folder)
    try:
        with _open(box) as mailbox:
            try:
                mailbox.login(box.user, password, initial_folder=box.folder)
            except MailboxLoginError:
                raise BounceError(f"{box.shown}: login refused; check the user name and "
                                  f"{PASSWORD_VARIABLE}") from None
            _process_folder(mailbox, settings, summary)
    except (OSError, ssl.SSLError) as err:
        raise BounceError(f"{box.shown}: cannot reach the IMAP server ({err}); check the host, "
                          "port and cafile") from err
    except ImapToolsError as err:
        raise BounceError(f"{box.shown}: the IMAP server refused a command ({err}); check "
                          f"that the folder {box.folder!r} exists") from err
    return summary


def _open(box: Mailbox):
    from imap_tools import MailBox, MailBoxStartTls

    context = ssl.create_default_context(cafile=box.cafile)
    if box.tls == "tls":
        return MailBox(box.host, box.port, timeout=60, ssl_context=context)
    return MailBoxStartTls(box.host, box.port, timeout=60, ssl_context=context)


def _process_folder(mailbox, settings: Settings, summary: FetchSummary) -> None:
    to_move: list[str] = []
    conn = connect(settings)
    try:
        uids = _unread_by_us(mailbox, conn, summary)
        messages = mailbox.fetch(uid_list=uids, mark_seen=False, bulk=BATCH) if uids else ()
        for message in messages:
            try:
                result = process_message(conn, settings, message.obj, source="imap")
            except Exception:   # noqa: BLE001 — one unreadable mail must not stop the rest
                log.exception("mail %s could not be processed; it stays where it is", message.uid)
                summary.by_outcome["could not be read"] += 1
                continue
            summary.read += 1
            summary.by_outcome[("again: " if result.duplicate else "") + result.outcome] += 1
            if result.is_processed_bounce and message.uid:
                to_move.append(message.uid)
    finally:
        conn.close()
    if to_move:
        if not mailbox.folder.exists(settings.bounce_folder):
            mailbox.folder.create(settings.bounce_folder)
        mailbox.move(to_move, settings.bounce_folder)
        summary.moved = len(to_move)


def _unread_by_us(mailbox, conn, summary: FetchSummary) -> list[str]:
    """UIDs worth downloading whole: all but the mails read before and left here on purpose
    (ordinary mail, auto-replies, unmatched bounces), found by their headers alone."""
    wanted = []
    for message in mailbox.fetch("ALL", mark_seen=False, headers_only=True, bulk=BATCH):
        key = message_key(message.obj) if message.obj.get("Message-ID") else None
        earlier = store.earlier_outcome(conn, key) if key else None
        if earlier is not None and earlier != Outcome.APPLIED:
            summary.by_outcome["left as before"] += 1
        elif message.uid:
            wanted.append(message.uid)
    return wanted
