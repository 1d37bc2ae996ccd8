"""The states a campaign and its rows pass through, as the journal stores them."""
from __future__ import annotations

from enum import StrEnum


class CampaignState(StrEnum):
    """A campaign's status in the journal (`campaigns.status`)."""

    SNAPSHOT = "snapshot"    # created; its audience is being written
    READY = "ready"          # every recipient has a pending row; nothing sent yet
    SENDING = "sending"
    PAUSED = "paused"        # stopped cleanly (quota, failures, Ctrl-C); run again to resume
    FINISHED = "finished"    # no row is pending or waiting for a retry


class RowState(StrEnum):
    """One recipient's row (`journal.state`): pending → claimed → sent | rejected | retry | unknown."""

    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    REJECTED = "rejected"
    RETRY = "retry"
    UNKNOWN = "unknown"
