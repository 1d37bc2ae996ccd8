"""The audience's types: who a campaign sends to, and a person as the preferences page shows them.

This module imports nothing of postbode but `counting` (a plan's counts, which must load
without SQLAlchemy), so every stage may use these types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, Mapping

from postbode.counting import PlanCounts  # noqa: F401 - a type of the audience, defined there

Formality = Literal["formal", "informal"]
# Formality when neither the segment nor the subscriber says: "u" is never rude.
DEFAULT_FORMALITY: Formality = "formal"
NO_FIELDS: Mapping[str, object] = MappingProxyType({})


class Consent(StrEnum):
    """A subscriber's one consent state (not per list)."""

    UNCONFIRMED = "unconfirmed"
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class SuppressionReason(StrEnum):
    """Why an address is on the suppression list."""

    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FORGOTTEN = "forgotten"
    MANUAL = "manual"


SUPPRESSION_REASONS = tuple(r.value for r in SuppressionReason)
# Reasons that are also the subscriber's consent state from then on.
WITHDRAWN = (Consent.UNSUBSCRIBED, Consent.BOUNCED, Consent.COMPLAINED)


@dataclass(frozen=True, slots=True)
class Recipient:
    """One address a campaign sends to, with what it needs to be personalised.

    `fields` are the subscriber's attributes declared under `fields:` in segments.yaml
    (e.g. total_given), for personal fields in the text; they take no part in equality.
    """

    subscriber_id: int | None
    email: str
    name: str | None
    locale: str
    formality: Formality
    view: str | None
    segment: str
    fields: Mapping[str, object] = field(default_factory=lambda: NO_FIELDS, compare=False, hash=False)
    # the subscriber's opaque key: personal links carry it instead of the address
    key: str | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Subscriber:
    """One person as the preferences page shows them: their own settings and lists."""

    id: int
    email: str
    name: str | None
    locale: str | None
    formality: Formality | None
    consent: Consent
    lists: tuple[str, ...]


