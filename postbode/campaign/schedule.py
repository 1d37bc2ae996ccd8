"""Scheduled campaigns: recorded by `send … --at`, started by `worker` when due, listed and cancelled.

A schedule moves `scheduled → sending → sent`, or to `paused` (resumed by the worker at
`resume_at`), `refused` (the newsletter changed after it was scheduled), `failed`, or
`cancelled`. The newsletter's fingerprint is frozen when it is scheduled; a worker that
finds other files at send time refuses, naming them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import RowMapping, func, insert, select, update

from postbode import journal, store
from postbode.campaign.fingerprint import Fingerprint
from postbode.config import Settings
from postbode.errors import CampaignError
from postbode.store.schema import schedules

AT_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


class ScheduleStatus(StrEnum):
    """A scheduled campaign's state."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    REFUSED = "refused"
    FAILED = "failed"
    CANCELLED = "cancelled"


OPEN = (ScheduleStatus.SCHEDULED, ScheduleStatus.PAUSED)


@dataclass(frozen=True)
class Schedule:
    """One scheduled campaign."""

    id: int
    newsletter_path: str
    newsletter_id: str
    segments: tuple[str, ...]
    content_hash: str
    content_parts: Mapping[str, str]
    transport: str
    new_campaign: bool
    again: bool           # send --again: also to people who already have the newsletter
    send_at: float
    status: ScheduleStatus
    reason: str | None
    campaign_id: str | None
    resume_at: float | None
    started_at: float | None
    finished_at: float | None

    @property
    def base_id(self) -> str:
        return journal.base_id(self.newsletter_id, self.segments)


def _schedule(row: RowMapping) -> Schedule:
    return Schedule(row["id"], row["newsletter_path"], row["newsletter_id"], tuple(row["segments"]),
                    row["content_hash"], row["content_parts"], row["transport"],
                    bool(row["new_campaign"]), bool(row["again"]), row["send_at"], ScheduleStatus(row["status"]),
                    row["reason"], row["campaign_id"], row["resume_at"], row["started_at"],
                    row["finished_at"])


def parse_at(value: str, settings: Settings, *, now: float | None = None) -> float:
    """`2026-07-12 10:00` in the project's time zone ([i18n] timezone) as a timestamp, in the future."""
    for form in AT_FORMATS:
        try:
            moment = datetime.strptime(value.strip(), form)
            break
        except ValueError:
            continue
    else:
        raise CampaignError(f"--at {value!r}: not a time postbode reads; write it as "
                            "YYYY-MM-DD HH:MM, e.g. --at \"2026-07-12 10:00\"")
    when = moment.replace(tzinfo=ZoneInfo(settings.timezone)).timestamp()
    if when <= (time.time() if now is None else now):
        raise CampaignError(f"--at {value!r} ({settings.timezone}) is in the past; "
                            "name a time to come, or send now without --at")
    return when


def stored_path(settings: Settings, path: Path) -> str:
    """The newsletter's path as a worker on another machine finds it: relative to the project."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(settings.root))
    except ValueError:
        return str(resolved)


def create(conn: store.Connection, settings: Settings, newsletter_path: Path, newsletter_id: str,
           segments: Iterable[str], frozen: Fingerprint, transport: str, send_at: float,
           new_campaign: bool = False, again: bool = False) -> Schedule:
    """Record a campaign to start at `send_at`, with the newsletter's fingerprint of now."""
    with store.atomic(conn):
        new_id = conn.execute(insert(schedules).values(
            newsletter_path=stored_path(settings, newsletter_path), newsletter_id=newsletter_id,
            segments=sorted(set(segments)), content_hash=frozen.digest,
            content_parts=dict(sorted(frozen.files.items())), transport=transport,
            new_campaign=int(new_campaign), again=int(again), send_at=send_at, status=ScheduleStatus.SCHEDULED,
            created_at=time.time()).returning(schedules.c.id)).scalar_one()
    return get(conn, new_id)


def get(conn: store.Connection, schedule_id: int) -> Schedule:
    row = conn.execute(select(schedules).where(schedules.c.id == schedule_id)).mappings().first()
    if row is None:
        raise CampaignError(f"no scheduled campaign {schedule_id}; `schedule list` shows them")
    return _schedule(row)


def list_all(conn: store.Connection) -> list[Schedule]:
    rows = conn.execute(select(schedules).order_by(schedules.c.send_at, schedules.c.id)).mappings()
    return [_schedule(r) for r in rows]


def cancel(conn: store.Connection, schedule_id: int) -> Schedule:
    """Cancel a campaign not started yet (or paused); CampaignError for any other."""
    found = get(conn, schedule_id)
    with store.atomic(conn):
        done = conn.execute(update(schedules).where(schedules.c.id == schedule_id,
                                                    schedules.c.status.in_(OPEN))
                            .values(status=ScheduleStatus.CANCELLED, finished_at=time.time())).rowcount
    if not done:
        raise CampaignError(f"scheduled campaign {schedule_id} is {found.status}; only a "
                            "scheduled or paused one can be cancelled")
    return get(conn, schedule_id)


def take_due(conn: store.Connection, now: float) -> Schedule | None:
    """The next due schedule (to start, or paused and due to resume), taken by this process.

    The status changes only if no other worker took it first, so each is started once.
    """
    c = schedules.c
    due = ((c.status == ScheduleStatus.SCHEDULED) & (c.send_at <= now)) | \
          ((c.status == ScheduleStatus.PAUSED) & (c.resume_at <= now))
    for row in conn.execute(select(c.id, c.status).where(due).order_by(c.send_at, c.id)).all():
        with store.atomic(conn):
            taken = conn.execute(update(schedules).where(c.id == row.id, c.status == row.status)
                                 .values(status=ScheduleStatus.SENDING,
                                         started_at=func.coalesce(c.started_at, now))).rowcount
        if taken:
            return get(conn, row.id)
    return None


def sending(conn: store.Connection) -> list[Schedule]:
    """Schedules some worker is sending now (or was, when it died): others may join them."""
    rows = conn.execute(select(schedules).where(schedules.c.status == ScheduleStatus.SENDING)
                        .order_by(schedules.c.id)).mappings()
    return [_schedule(r) for r in rows]


def settle(conn: store.Connection, schedule_id: int, status: ScheduleStatus, *,
           reason: str | None = None, campaign_id: str | None = None,
           resume_at: float | None = None) -> None:
    """Record how a start or resume ended."""
    values: dict[str, object] = {"status": str(status), "reason": reason, "resume_at": resume_at}
    if campaign_id:
        values["campaign_id"] = campaign_id
    if status in (ScheduleStatus.SENT, ScheduleStatus.REFUSED, ScheduleStatus.FAILED):
        values["finished_at"] = time.time()
    with store.atomic(conn):
        conn.execute(update(schedules).where(schedules.c.id == schedule_id).values(values))



def schedule_send(settings: Settings, newsletter_path: Path, segments: Iterable[str],
                  transport: str, send_at: float, new_campaign: bool = False,
                  again: bool = False) -> Schedule:
    """Check everything a send checks (every variant is built once), then record the schedule."""
    from postbode.campaign.fingerprint import fingerprint
    from postbode.campaign.run import _prepare
    from postbode.campaign.session import open_session
    from postbode.campaign.variants import audience_keys

    names = list(segments)
    with open_session(settings, newsletter_path, names, transport) as session:
        _prepare(session, audience_keys(session.conn, session.settings, names))
        frozen = fingerprint(session.settings, newsletter_path, session.newsletter.id)
        return create(session.conn, session.settings, newsletter_path, session.newsletter.id,
                      names, frozen, session.shown, send_at, new_campaign, again)
