"""What keeps a send safe from outside: who may send a campaign at once, and clean stops on signals.

On a SQLite file one process sends a campaign at a time (a file lock). On PostgreSQL
several senders may share one: rows are claimed with SKIP LOCKED, and each sender
holds a shared advisory lock on the campaign while it sends. Only a sender that is
alone (it got the lock exclusively) may turn rows left `claimed` into `unknown`:
with others sending, those rows are theirs, in flight.
"""
from __future__ import annotations

import fcntl
import hashlib
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from postbode import store
from postbode.config import Settings, is_database_url
from postbode.errors import CampaignError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SenderLock:
    """Held while a process sends a campaign; `alone`: no other process sends it now."""

    def __init__(self, conn: store.Connection | None = None, key: int = 0, alone: bool = True):
        self.conn, self.key, self.alone = conn, key, alone

    def share(self) -> None:
        """Let other senders join from now on (after recovering, if alone)."""
        if self.conn is not None and self.alone:
            self.conn.execute(text("SELECT pg_advisory_lock_shared(:k)"), {"k": self.key})
            self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self.alone = False


def senders(conn: store.Connection, key: int) -> int:
    """How many processes hold the campaign's advisory lock now (PostgreSQL), at least 1.

    PostgreSQL shows a bigint advisory key as two unsigned 32-bit halves (classid, objid).
    """
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    found = conn.execute(text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND objsubid = 1 AND classid::bigint = :high AND objid::bigint = :low"),
        {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF}).scalar()
    return max(1, int(found or 0))


def lock_key(base_id: str) -> int:
    """The advisory lock number of a campaign (a signed 64-bit integer)."""
    return int.from_bytes(hashlib.sha256(base_id.encode()).digest()[:8], "big", signed=True)


@contextmanager
def campaign_lock(settings: Settings, base_id: str) -> Iterator[SenderLock]:
    """Who sends this campaign now: one process (SQLite), or several (PostgreSQL)."""
    if is_database_url(settings.database):
        with _shared_lock(settings, base_id) as lock:
            yield lock
        return
    with _file_lock(settings, base_id):
        yield SenderLock()


@contextmanager
def _shared_lock(settings: Settings, base_id: str) -> Iterator[SenderLock]:
    """The advisory lock, exclusive if no one else holds it (the lock goes with the connection)."""
    conn = store.connect(settings, migrate=False)
    key = lock_key(base_id)
    try:
        alone = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        if not alone:
            conn.execute(text("SELECT pg_advisory_lock_shared(:k)"), {"k": key})
        yield SenderLock(conn, key, bool(alone))
    finally:
        conn.close()


def alone_with(settings: Settings, base_id: str) -> bool:
    """True when no process sends this campaign now (PostgreSQL; SQLite: no file lock held)."""
    try:
        with campaign_lock(settings, base_id) as lock:
            return lock.alone
    except CampaignError:
        return False


@contextmanager
def _file_lock(settings: Settings, base_id: str) -> Iterator[None]:
    """One process at a time per campaign (the lock goes when the process does, even killed)."""
    path = Path(f"{settings.database}.{base_id}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CampaignError(
                f"campaign {base_id} is being sent by another postbode process right now; "
                "wait for it to finish (or stop it with Ctrl-C) before running this again"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def newsletter_lock(settings: Settings, newsletter_id: str) -> Iterator[None]:
    """One snapshot at a time per newsletter: the next one waits (a snapshot takes seconds).

    Who already has a newsletter is decided at its snapshots; taking turns means a
    snapshot always sees the rows of the one before it. On PostgreSQL the turn is an
    advisory lock, so senders on other machines take turns too.
    """
    if is_database_url(settings.database):
        with _advisory_turn(settings, lock_key(f"newsletter:{newsletter_id}")):
            yield
        return
    digest = hashlib.sha256(newsletter_id.encode()).hexdigest()[:16]
    path = Path(f"{settings.database}.newsletter-{digest}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def _advisory_turn(settings: Settings, key: int) -> Iterator[None]:
    """Wait for and hold an exclusive advisory lock (it goes with the connection, even killed)."""
    conn = store.connect(settings, migrate=False)
    try:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            # Unlocked here, not by closing: the server lets go of a closed session's
            # locks only once its backend has ended, and the next snapshot would wait for it.
            _quietly(lambda: conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key}))
    finally:
        conn.close()


def _quietly(statement: Callable[[], object]) -> None:
    """Run a clean-up statement; if the connection is gone, closing it lets go just the same."""
    try:
        statement()
    except DBAPIError:
        pass


@contextmanager
def interrupts(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C or SIGTERM stops claiming; mails in flight finish and are recorded.

    A second signal aborts at once (KeyboardInterrupt): rows in flight then stay
    `claimed` and become `unknown` on the next run, as after a crash.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread; the caller stops us through `stop`
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {number: signal.signal(number, handler) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
