"""What bounces said, for people: a campaign's summary (`report`) and recent events (`bounces list`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from postbode import journal
from postbode.bounces import store
from postbode.config import Settings
from postbode.store import Connection, connect


@dataclass(frozen=True)
class CampaignSummary:
    delivered: int
    hard: int
    soft: int
    complained: int
    blocked: int
    blocked_examples: tuple[str, ...] = ()

    def describe(self) -> str:
        return (f"delivered {self.delivered}, bounced {self.hard + self.soft} "
                f"(hard {self.hard}, soft {self.soft}), complained {self.complained}, "
                f"blocked {self.blocked}")

    @property
    def warning(self) -> str | None:
        """Blocks are about the sender, not the recipients: say so plainly."""
        if not self.blocked:
            return None
        examples = "; ".join(self.blocked_examples)
        return (f"{self.blocked} mail(s) were refused by the receiving server's policy "
                f"(5.7.x), which is about the sender (reputation, SPF/DKIM/DMARC, content), "
                f"not the recipients; they stay subscribed. Check your sending domain's "
                f"setup. Examples: {examples}")


def campaign_summary(conn: Connection, campaign_id: str) -> CampaignSummary | None:
    """Counts for `report`; None when nothing came back for this campaign and none went out."""
    tally = journal.tally(conn, campaign_id)
    counts = store.campaign_counts(conn, campaign_id)
    if not counts and not tally["sent"]:
        return None
    return CampaignSummary(
        delivered=tally["sent"], hard=counts.get("hard", 0), soft=counts.get("soft", 0),
        complained=counts.get("complaint", 0), blocked=counts.get("blocked", 0),
        blocked_examples=tuple(store.blocked_examples(conn, campaign_id)))


@dataclass(frozen=True)
class EventLine:
    when: str
    bounce_class: str
    status: str
    email: str
    campaign_id: str
    action: str
    diagnostic: str


@dataclass(frozen=True)
class Recent:
    events: list[EventLine]
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def describe_counts(self) -> str:
        if not self.counts:
            return "no bounce mail read in this period"
        parts = [f"{n} {kind.replace('_', '-')} {outcome}"
                 for (kind, outcome), n in sorted(self.counts.items())]
        return "mail read: " + ", ".join(parts)


def recent(settings: Settings, since: float, limit: int) -> Recent:
    """Events since `since` (newest first) and what mail was read, by kind and outcome."""
    conn = connect(settings)
    try:
        events = [EventLine(datetime.fromtimestamp(r["at"]).isoformat(timespec="seconds"),
                            r["class"], r["status"], r["email"] or "(forgotten)",
                            r["campaign_id"] or "", r["action"], r["diagnostic"])
                  for r in store.recent_events(conn, since, limit)]
        return Recent(events, store.message_counts(conn, since))
    finally:
        conn.close()
