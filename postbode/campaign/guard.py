"""What keeps a send safe from outside: one process per campaign, and clean stops on signals."""
from __future__ import annotations

import fcntl
import hashlib
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from postbode.config import Settings
from postbode.errors import CampaignError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def campaign_lock(settings: Settings, base_id: str) -> Iterator[None]:
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
    snapshot always sees the rows of the one before it.
    """
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
