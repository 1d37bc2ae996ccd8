"""Audience stage: subscribers, consent, lists, segments and suppression in the state database.

Entry point for sending: `resolve(conn, segments, settings)` streams the
`Recipient`s of the requested segments. The parts, one module each:

    model        Recipient, Subscriber, Consent (imports nothing of postbode)
    addresses    normalise, address_key, email_hash
    consent      suppress, unsubscribe, forget, is_suppressed, the event log
    preferences  a subscriber's own settings and lists
    segments     segments.yaml, compiled to SQLAlchemy conditions
    resolve      recipients and plan counts
    importer     CSV files into a list
    export       listing and CSV export
"""
from __future__ import annotations

from postbode.audience.addresses import address_hash, address_key, email_hash, normalise, now
from postbode.audience.consent import (count_by_consent, email_for_key, find_subscriber, forget,
                                       is_suppressed, log_event, recipient_is_suppressed, suppress,
                                       unsubscribe)
from postbode.audience.export import export, iter_subscribers
from postbode.audience.importer import ImportSummary, import_csv, import_samples_if_empty
from postbode.audience.model import (DEFAULT_FORMALITY, SUPPRESSION_REASONS, Consent, Formality,
                                     PlanCounts, Recipient, Subscriber, SuppressionReason)
from postbode.audience.preferences import get_subscriber, list_names, update_preferences
from postbode.audience.resolve import BATCH_SIZE, effective_locale, plan_counts, resolve
from postbode.errors import AudienceError
from postbode.store import atomic

__all__ = [
    "BATCH_SIZE", "DEFAULT_FORMALITY", "SUPPRESSION_REASONS", "AudienceError", "Consent", "Formality",
    "ImportSummary", "PlanCounts", "Recipient", "Subscriber", "SuppressionReason", "address_hash",
    "address_key", "atomic", "count_by_consent", "email_for_key", "effective_locale", "email_hash", "export",
    "find_subscriber", "forget", "get_subscriber", "import_csv", "import_samples_if_empty",
    "is_suppressed", "iter_subscribers", "list_names", "log_event", "normalise", "now",
    "plan_counts", "recipient_is_suppressed", "resolve", "suppress", "unsubscribe",
    "update_preferences",
]
