"""`worker`: the long-running process that sends on schedule, resumes, fetches bounces, purges.

Each round it starts scheduled campaigns that are due, resumes paused ones whose time
has come, joins campaigns another worker is sending (PostgreSQL: several senders split
the rows), fetches bounce mail when a mailbox is configured, and purges unconfirmed
sign-ups past their age. SIGTERM (or Ctrl-C) finishes the batch in flight and ends the
loop. Every event is one log line, plain or JSON.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Mapping, TextIO

from postbode import journal, store
from postbode.campaign import guard
from postbode.campaign.fingerprint import fingerprint
from postbode.campaign.pacing import Policy
from postbode.campaign.run import run
from postbode.campaign.schedule import Schedule, ScheduleStatus
from postbode.campaign import schedule as schedules
from postbode.campaign.states import CampaignState
from postbode.config import Settings, is_database_url
from postbode.errors import CampaignInterrupted, CampaignPaused, PostbodeError

RESUME_AFTER = 300.0     # a paused campaign without a due retry is tried again after this
STALE_AFTER = 600.0      # a schedule taken this long ago with no campaign: its worker died


class Log:
    """One line per event: `time event key=value …`, or one JSON object per line."""

    def __init__(self, form: str = "plain", stream: TextIO | None = None):
        self.form, self.stream = form, stream or sys.stdout
        self.lock = threading.Lock()

    def event(self, name: str, **fields: object) -> None:
        at = datetime.now().astimezone().isoformat(timespec="seconds")
        if self.form == "json":
            line = json.dumps({"at": at, "event": name, **fields}, default=str, ensure_ascii=False)
        else:
            line = " ".join([at, name, *(f"{k}={_plain(v)}" for k, v in fields.items())])
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _plain(value: object) -> str:
    text = str(value).replace("\n", " ")
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


@dataclass
class Options:
    """What `worker` was asked to do besides sending."""

    once: bool = False
    poll: float = 1.0                  # seconds between rounds
    imap: str | None = None            # bounce mailbox (bounces fetch), if any
    bounce_every: float = 300.0
    purge_every: float = 3600.0
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)


class Share:
    """The progress callback that counts the rows this process settled itself."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.last = 0

    def __call__(self, done: int, total: int) -> None:
        if self.first is None:
            self.first = done   # the first report holds what was settled before this run
        self.last = done

    @property
    def own(self) -> int:
        return self.last - (self.first or 0)


@dataclass
class Worker:
    settings: Settings
    options: Options
    log: Log
    stop: threading.Event
    last: dict[str, float] = field(default_factory=dict)

    def loop(self) -> None:
        """Rounds until stopped (or one round with --once)."""
        self.log.event("worker.started", pid=os.getpid(), once=self.options.once)
        with guard.interrupts(self.stop):
            while not self.stop.is_set():
                self.round()
                if self.options.once:
                    break
                self.stop.wait(self.options.poll)
        self.log.event("worker.stopped", pid=os.getpid())

    def round(self) -> None:
        """One pass over everything the worker does."""
        self.start_due()
        if not self.stop.is_set():
            self.join_sending()
        self.every("bounces", self.options.bounce_every, self.fetch_bounces)
        self.every("purge", self.options.purge_every, self.purge)

    def every(self, name: str, seconds: float, task: Callable[[], None]) -> None:
        now = time.monotonic()
        if self.stop.is_set() or now - self.last.get(name, -seconds - 1) < seconds:
            return
        self.last[name] = now
        try:
            task()
        except PostbodeError as err:
            self.log.event(f"{name}.failed", reason=str(err))

    # ------------------------------------------------------------ campaigns

    def start_due(self) -> None:
        """Start (or resume) every schedule whose time has come, one after the other."""
        while not self.stop.is_set():
            conn = store.connect(self.settings)
            try:
                due = schedules.take_due(conn, time.time())
            finally:
                conn.close()
            if due is None:
                return
            if due.campaign_id is None and not self.unchanged(due):
                continue
            self.send(due, new_campaign=due.new_campaign and due.campaign_id is None)

    def unchanged(self, s: Schedule) -> bool:
        """The newsletter is as it was scheduled; otherwise the schedule is refused, saying why."""
        try:
            now = fingerprint(self.settings, self.settings.root / s.newsletter_path, s.newsletter_id)
            changed = now.changed_since(s.content_parts) if now.digest != s.content_hash else []
        except OSError as err:
            changed = [f"{s.newsletter_path} cannot be read: {err.strerror or err}"]
        if not changed:
            return True
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        reason = (f"the newsletter changed after it was scheduled (changed: {shown}); nothing "
                  "was sent. Check it, then schedule it again")
        self.settle(s, ScheduleStatus.REFUSED, reason=reason)
        self.log.event("schedule.refused", schedule=s.id, newsletter=s.newsletter_id, reason=reason)
        return False

    def join_sending(self) -> None:
        """Campaigns another worker sends (PostgreSQL), or one a dead worker left: help finish them."""
        conn = store.connect(self.settings)
        try:
            found = [(s, journal.latest_campaign(conn, s.newsletter_id, s.segments))
                     for s in schedules.sending(conn)]
        finally:
            conn.close()
        for s, latest in found:
            if self.stop.is_set():
                return
            if self.may_join(s, latest):
                self.send(s, new_campaign=s.new_campaign and not _begun_by(s, latest))

    def may_join(self, s: Schedule, latest: journal.Campaign | None) -> bool:
        """Whether this worker should send a schedule another worker took."""
        alone = guard.alone_with(self.settings, s.base_id)
        ours = _begun_by(s, latest)
        if alone:
            # its worker is gone: resume what it began, or start it again if it began nothing
            return ours or time.time() - (s.started_at or 0) > STALE_AFTER
        shared = is_database_url(self.settings.database)
        return shared and ours and latest is not None and latest.status == CampaignState.SENDING

    def send(self, s: Schedule, *, new_campaign: bool) -> None:
        """Run the campaign of a schedule and record how it ended."""
        path = self.settings.root / s.newsletter_path
        self.log.event("campaign.sending", schedule=s.id, newsletter=s.newsletter_id,
                       segments=",".join(s.segments))
        share = Share()
        try:
            summary = run(self.settings, Path(path), list(s.segments), stop=self.stop,
                          policy=Policy.from_settings(self.settings), new_campaign=new_campaign,
                          again=s.again, progress=share)
        except CampaignPaused as err:
            self.paused(s, err)
        except CampaignInterrupted as err:
            # the schedule stays `sending`: the next worker to start resumes it
            self.log.event("campaign.stopped", schedule=s.id, reason=str(err))
        except PostbodeError as err:
            self.settle(s, ScheduleStatus.FAILED, reason=str(err))
            self.log.event("campaign.failed", schedule=s.id, reason=str(err))
        else:
            self.finished(s, summary.campaign_id, summary.totals, share.own)

    def finished(self, s: Schedule, campaign_id: str, totals: journal.Tally, own: int) -> None:
        if guard.alone_with(self.settings, s.base_id):
            self.recover_left(campaign_id)
        self.settle(s, ScheduleStatus.SENT, campaign_id=campaign_id)
        self.log.event("campaign.sent", schedule=s.id, campaign=campaign_id, by_this_worker=own,
                       **{str(k): v for k, v in totals.by_state.items() if v})

    def recover_left(self, campaign_id: str) -> None:
        """Rows a killed worker left claimed become `unknown` once no one else sends."""
        conn = store.connect(self.settings)
        try:
            n = journal.recover(conn, campaign_id)
        finally:
            conn.close()
        if n:
            self.log.event("campaign.unknown", campaign=campaign_id, rows=n)

    def paused(self, s: Schedule, err: CampaignPaused) -> None:
        conn = store.connect(self.settings)
        try:
            latest = journal.latest_campaign(conn, s.newsletter_id, s.segments)
            due = journal.next_retry_at(conn, latest.id) if latest else None
        finally:
            conn.close()
        resume_at = time.time() + RESUME_AFTER if due is None else max(due, time.time())
        self.settle(s, ScheduleStatus.PAUSED, reason=str(err), resume_at=resume_at,
                    campaign_id=latest.id if latest else None)
        self.log.event("campaign.paused", schedule=s.id, resume_at=_when(resume_at), reason=str(err))

    def settle(self, s: Schedule, status: ScheduleStatus, **values) -> None:
        conn = store.connect(self.settings)
        try:
            schedules.settle(conn, s.id, status, **values)
        finally:
            conn.close()

    # ------------------------------------------------------------ housekeeping

    def fetch_bounces(self) -> None:
        url = self.options.imap or self.options.env.get("POSTBODE_BOUNCES_IMAP")
        if not url or not self.settings.bounce_domain:
            return
        from postbode.bounces import fetch

        summary = fetch.fetch(self.settings, url, self.options.env)
        self.log.event("bounces.fetched", summary=summary.describe())

    def purge(self) -> None:
        n = purge_unconfirmed(self.settings)
        if n:
            self.log.event("signups.purged", removed=n)


def purge_unconfirmed(settings: Settings) -> int:
    """Erase sign-ups never confirmed within [signup] unconfirmed_days; returns how many."""
    from postbode.audience.signup import forget_old_rate_events, purge_unconfirmed as purge

    conn = store.connect(settings)
    try:
        n = purge(conn, settings.unconfirmed_days)
        forget_old_rate_events(conn)
        return n
    finally:
        conn.close()


def _begun_by(s: Schedule, latest: journal.Campaign | None) -> bool:
    """The campaign was created when the schedule was started (not an older one)."""
    return latest is not None and latest.created_at >= (s.started_at or 0) - 1


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def run_worker(settings: Settings, options: Options, log: Log,
               stop: threading.Event | None = None) -> None:
    """The worker's loop, until SIGTERM, Ctrl-C or `stop` (one round with options.once)."""
    Worker(settings, options, log, stop or threading.Event()).loop()
