"""Every table of the state database, defined once as SQLAlchemy Core `Table`s.

Queries everywhere are built from these objects, so no module writes a table or
column name as text. The migrations in `migrations/versions/` create them; this
module describes the newest schema and imports nothing else of postbode.

JSON columns hold small documents (a subscriber's attributes, tags; a campaign's
segments and content fingerprint); on SQLite they are stored as text.
"""
from __future__ import annotations

import base64
import secrets

from sqlalchemy import (JSON, CheckConstraint, Column, Float, ForeignKey, Index, Integer, MetaData,
                        Table, Text, UniqueConstraint, text)

metadata = MetaData()

CONSENTS = ("unconfirmed", "subscribed", "unsubscribed", "bounced", "complained")
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained", "forgotten", "manual")
KEY_BYTES = 16   # of randomness in a subscriber key (22 url-safe characters)
# The journal row states the partial indexes name (postbode.campaign.states.RowState).
PENDING, RETRY, SENT = "pending", "retry", "sent"
UNSETTLED = f"state NOT IN ('{PENDING}', '{SENT}')"


def new_subscriber_key() -> str:
    """A random, url-safe subscriber key: what links carry instead of the address."""
    return secrets.token_urlsafe(KEY_BYTES)


def new_subscriber_keys(count: int) -> list[str]:
    """`count` keys as `new_subscriber_key` makes them, from one read of the system's randomness."""
    randomness = secrets.token_bytes(KEY_BYTES * count)
    return [base64.urlsafe_b64encode(randomness[i:i + KEY_BYTES]).rstrip(b"=").decode("ascii")
            for i in range(0, len(randomness), KEY_BYTES)]


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


lists = Table(
    "lists", metadata,
    Column("name", Text, primary_key=True),
    Column("created", Text, nullable=False),
)

subscribers = Table(
    "subscribers", metadata,
    Column("id", Integer, primary_key=True),
    Column("email", Text, nullable=False),
    Column("email_key", Text, nullable=False, unique=True),
    Column("email_hash", Text, nullable=False),
    Column("name", Text),
    Column("formality", Text, CheckConstraint(_one_of("formality", ("formal", "informal")))),
    Column("locale", Text),
    Column("attributes", JSON, nullable=False, server_default=text("'{}'")),
    Column("tags", JSON, nullable=False, server_default=text("'[]'")),
    Column("source", Text, nullable=False),
    Column("created", Text, nullable=False),
    Column("consent", Text, CheckConstraint(_one_of("consent", CONSENTS)), nullable=False),
    Column("consent_at", Text, nullable=False),
    Column("consent_source", Text, nullable=False),
    # the opaque key personal links carry (never the address); made on insert
    Column("subscriber_key", Text, default=new_subscriber_key),
    Index("subscribers_by_key", "subscriber_key", unique=True),
)

memberships = Table(
    "memberships", metadata,
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"),
           primary_key=True),
    Column("list", Text, ForeignKey("lists.name"), primary_key=True),
    Column("added", Text, nullable=False),
    Column("source", Text, nullable=False),
    Index("memberships_by_list", "list", "subscriber_id"),
    sqlite_with_rowid=False,
)

suppressions = Table(
    "suppressions", metadata,
    Column("email_hash", Text, primary_key=True),
    Column("reason", Text, CheckConstraint(_one_of("reason", SUPPRESSION_REASONS)), nullable=False),
    Column("source", Text, nullable=False),
    Column("created", Text, nullable=False),
    sqlite_with_rowid=False,
)

# The event log never holds an address, only its hash: it survives `forget`.
audience_events = Table(
    "audience_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("email_hash", Text),
    Column("source", Text, nullable=False),
    Column("detail", JSON, nullable=False, server_default=text("'{}'")),
    Index("audience_events_by_hash", "email_hash"),
)

# Provider events already handled, by the provider's own id: a retried delivery is a no-op.
webhook_events = Table(
    "webhook_events", metadata,
    Column("provider", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("received_at", Text, nullable=False),
    sqlite_with_rowid=False,
)

# Mailgun signature tokens seen within the signature's lifetime (replay protection).
webhook_tokens = Table(
    "webhook_tokens", metadata,
    Column("token", Text, primary_key=True),
    Column("seen_at", Float, nullable=False),
    sqlite_with_rowid=False,
)

campaigns = Table(
    "campaigns", metadata,
    Column("id", Text, primary_key=True),
    Column("base_id", Text, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("newsletter_id", Text, nullable=False),
    Column("segments", JSON, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("content_parts", JSON, nullable=False),
    Column("transport", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("total", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    # Written with the snapshot: who was left out because they already had this newsletter
    # ({campaign id: n}), and how many of them --again sent to anyway.
    Column("already_received", JSON, nullable=False, server_default=text("'{}'")),
    Column("sent_again", Integer, nullable=False, server_default=text("0")),
    # newsletter, or confirmation (the sign-up's double opt-in mails, one campaign per hour)
    Column("kind", Text, nullable=False, server_default=text("'newsletter'")),
    UniqueConstraint("base_id", "sequence"),
)

journal = Table(
    "journal", metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Text, ForeignKey("campaigns.id"), nullable=False),
    Column("subscriber_id", Integer),
    Column("email", Text, nullable=False),
    Column("name", Text),
    Column("locale", Text, nullable=False),
    Column("formality", Text, nullable=False),
    Column("view", Text),
    Column("segment", Text, nullable=False),
    Column("state", Text, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_at", Float),
    Column("last_code", Integer),
    Column("last_text", Text),
    Column("message_id", Text),
    Column("provider_id", Text),
    Column("created_at", Float, nullable=False),
    Column("claimed_at", Float),
    Column("updated_at", Float),
    Column("sent_at", Float),
    # what a bounce mail said about the row's mail: RFC 3463 status (5.1.1) and diagnostic
    Column("bounce_status", Text),
    Column("bounce_diagnostic", Text),
    # SHA-256 of the address's comparison key (as subscribers.email_hash): who had which
    # newsletter is found by it, so it holds after the address itself is erased.
    Column("address_hash", Text),
    # the subscriber's opaque key when the row was written: the mail's links carry it
    Column("subscriber_key", Text),
    UniqueConstraint("campaign_id", "email"),
    # Rows neither pending nor sent (claimed, retry, unknown, …): what recovery, resends
    # and reports look for. Pending and sent rows stay out, so a claim and its settle
    # touch one page of it, not three.
    Index("journal_unsettled", "campaign_id", "state", sqlite_where=text(UNSETTLED)),
    # What a claim looks for: due retries by time, and pending rows variant by variant (one
    # batch holds one variant). Partial indexes: a row is in them only while it is retry or
    # pending, so claiming and settling it touch no other index page of theirs.
    Index("journal_due", "campaign_id", "next_at", sqlite_where=text(f"state = '{RETRY}'")),
    Index("journal_pending", "campaign_id", "locale", "view", "id",
          sqlite_where=text(f"state = '{PENDING}'")),
    Index("journal_sent_at", "sent_at", sqlite_where=text("sent_at IS NOT NULL")),
    # Bounce and complaint events name the mail by Message-ID or the provider's id.
    Index("journal_message_id", "message_id", sqlite_where=text("message_id IS NOT NULL")),
    Index("journal_provider_id", "provider_id", sqlite_where=text("provider_id IS NOT NULL")),
    # "Already received this newsletter": one index probe per recipient of a snapshot.
    # Not keyed on the state, which every claim and settle changes.
    Index("journal_by_address", "address_hash", "campaign_id"),
)



def with_postgresql_where() -> None:
    """Give the partial indexes their WHERE for PostgreSQL too, before it creates them.

    Not at import: naming a PostgreSQL option loads SQLAlchemy's PostgreSQL dialect (and
    with it asyncio), 50 ms of every command on a SQLite file.
    """
    for index in journal.indexes:
        where = index.dialect_options["sqlite"]["where"]
        if where is not None:
            index.dialect_options["postgresql"]["where"] = where


# Each time `send` worked on a campaign: through which transport (secrets left out), when.
campaign_sends = Table(
    "campaign_sends", metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", Text, ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    Column("transport", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Index("campaign_sends_by_campaign", "campaign_id", "started_at"),
)

# Each bounce mail read (by Message-ID or hash), so reading it again changes nothing.
bounce_messages = Table(
    "bounce_messages", metadata,
    Column("message_key", Text, primary_key=True),
    Column("received_at", Float, nullable=False),
    Column("source", Text, nullable=False),   # receiver | imap
    Column("kind", Text, nullable=False),     # bounces.parse.Kind
    Column("outcome", Text, nullable=False),  # bounces.process.Outcome
    sqlite_with_rowid=False,
)

# What each bounce or complaint said about a journal row (the address only as its hash).
bounce_events = Table(
    "bounce_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("message_key", Text, nullable=False),
    Column("journal_id", Integer),
    Column("campaign_id", Text),
    Column("email_hash", Text, nullable=False),
    Column("class", Text, nullable=False),    # bounces.policy.BounceClass
    Column("status", Text, nullable=False),
    Column("diagnostic", Text, nullable=False),
    Column("action", Text, nullable=False),   # bounced, soft_bounce, blocked, complained
    Index("bounce_events_by_hash", "email_hash", "class", "at"),
    Index("bounce_events_by_campaign", "campaign_id", "class"),
    Index("bounce_events_by_at", "at"),
)

# When a fresh preferences link was last mailed to an address (by hash): at most one an hour.
link_requests = Table(
    "link_requests", metadata,
    Column("email_hash", Text, primary_key=True),
    Column("requested_at", Float, nullable=False),
    sqlite_with_rowid=False,
)

# A sign-up waiting for its confirmation (double opt-in): the confirmation link names `key`.
signups = Table(
    "signups", metadata,
    Column("id", Integer, primary_key=True),
    Column("key", Text, nullable=False, unique=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("lists", JSON, nullable=False),
    Column("source", Text, nullable=False),            # form:<list> or the origin's host
    Column("consent_version", Text, nullable=False),
    Column("locale", Text, nullable=False),
    Column("ip_hash", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("used_at", Float),
    Index("signups_by_subscriber", "subscriber_id"),
)

# Proof of consent (GDPR art. 7): when, where, which text, in which language, from which IP (hash).
consent_records = Table(
    "consent_records", metadata,
    Column("id", Integer, primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    Column("at", Float, nullable=False),
    Column("source", Text, nullable=False),
    Column("lists", JSON, nullable=False),
    Column("consent_version", Text, nullable=False),
    Column("consent_text", Text, nullable=False),
    Column("locale", Text, nullable=False),
    Column("ip_hash", Text, nullable=False),
    Index("consent_records_by_subscriber", "subscriber_id"),
)

# Rate limits shared by every web worker: one row per counted act (bucket, hashed key, time).
rate_events = Table(
    "rate_events", metadata,
    Column("id", Integer, primary_key=True),
    Column("bucket", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("at", Float, nullable=False),
    Index("rate_events_by_key", "bucket", "key", "at"),
)

# Campaigns to start later (`send … --at`): the worker starts each when it is due, with the
# newsletter's fingerprint frozen when it was scheduled.
schedules = Table(
    "schedules", metadata,
    Column("id", Integer, primary_key=True),
    Column("newsletter_path", Text, nullable=False),   # relative to the project folder
    Column("newsletter_id", Text, nullable=False),
    Column("segments", JSON, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("content_parts", JSON, nullable=False),
    Column("transport", Text, nullable=False),         # as shown: secrets masked
    Column("new_campaign", Integer, nullable=False, server_default=text("0")),
    Column("again", Integer, nullable=False, server_default=text("0")),  # send --again
    Column("send_at", Float, nullable=False),
    Column("status", Text, nullable=False),            # campaign.schedule.ScheduleStatus
    Column("reason", Text),
    Column("campaign_id", Text),
    Column("resume_at", Float),                        # a paused campaign is resumed then
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Index("schedules_due", "status", "send_at"),
)
