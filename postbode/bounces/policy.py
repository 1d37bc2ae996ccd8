"""What a bounce means for the address: suppress at once, count, or only note it.

- hard (5.1.x: no such mailbox or domain, 5.1.10 null MX): suppressed at once;
- soft (4.x.x, 5.2.2 mailbox full, any other 5.x.x): counted, suppressed after
  `[bounces] soft_limit` of them within `soft_days` days (default 3 in 30);
- blocked (5.7.x: policy, spam filter, the sender's reputation): recorded against the
  campaign and shown by `report` as a warning about the sender; never suppresses,
  because the recipient did nothing wrong.
"""
from __future__ import annotations

from enum import StrEnum

from postbode.config import Settings

DAY = 86400.0


class BounceClass(StrEnum):
    HARD = "hard"
    SOFT = "soft"
    BLOCKED = "blocked"
    COMPLAINT = "complaint"


def classify(status: str) -> BounceClass:
    """The class of a failed delivery by its RFC 3463 status code."""
    klass, subject, _ = (status.split(".") + ["", "", ""])[:3]
    if klass == "5" and subject == "1":
        return BounceClass.HARD
    if klass == "5" and subject == "7":
        return BounceClass.BLOCKED
    return BounceClass.SOFT


def action_for(klass: BounceClass, soft_count: int, settings: Settings) -> str:
    """apply_event's action: bounced/complained suppress; soft_bounce and blocked are noted.

    `soft_count` is how many soft bounces the address had within the window, this one included.
    """
    if klass is BounceClass.COMPLAINT:
        return "complained"
    if klass is BounceClass.HARD:
        return "bounced"
    if klass is BounceClass.BLOCKED:
        return "blocked"
    return "bounced" if soft_count >= settings.bounce_soft_limit else "soft_bounce"


def soft_window(settings: Settings, now: float) -> float:
    """The earliest time a soft bounce still counts."""
    return now - settings.bounce_soft_days * DAY
