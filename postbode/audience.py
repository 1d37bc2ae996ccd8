"""Audience stage: subscribers, consent, lists, segments and suppression in the state database."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Formality = Literal["formal", "informal"]


@dataclass(frozen=True, slots=True)
class Recipient:
    """One address a campaign sends to, with what it needs to be personalised."""

    subscriber_id: int
    email: str
    name: str | None
    locale: str
    formality: Formality
    view: str | None
    segment: str
