"""A fresh preferences link, mailed on request from an expired one (at most one an hour per address).

The request is answered the same way whatever happens here (mailed, too soon, the
person is gone): the page must not tell a visitor whether an address is known.
The mail goes through the configured transport, as newsletters do; when it cannot
be handed over, the hour is not counted, so asking again works.
"""
from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone
from email.utils import format_datetime, formataddr

from flask import current_app, render_template
from sqlalchemy import Connection, delete, select

from postbode import audience, message, tokens
from postbode.audience import Recipient
from postbode.config import Settings
from postbode.errors import PostbodeError
from postbode.store import atomic, insert_ignore
from postbode.store.schema import link_requests
from postbode.transports import Status, open_transport
from postbode.web.pages import page_context, use_locale

# One fresh link an hour per address: enough for a person, useless for flooding their inbox.
INTERVAL = 3600
CAMPAIGN = "preferences-links"


def request_fresh_link(conn: Connection, settings: Settings, email: str,
                       locale: str, formal: bool) -> bool:
    """Mail the subscriber with this address a new preferences link; True when one was mailed."""
    subscriber = audience.find_subscriber(conn, email)
    if subscriber is None or audience.is_suppressed(conn, email):
        return False
    hash_ = audience.address_hash(email)
    if not _claim_hour(conn, hash_):
        return False
    mail = _mail(settings, subscriber, locale, formal)
    try:
        with open_transport(settings.transport, settings, campaign=CAMPAIGN) as transport:
            (result,) = transport.send_batch([mail])
    except (PostbodeError, OSError) as err:
        # logged for the operator; the visitor gets the usual answer (it must not differ)
        _release_hour(conn, hash_)
        current_app.logger.error("could not mail a fresh preferences link: %s", err)
        return False
    if result.status != Status.SENT:
        _release_hour(conn, hash_)
    current_app.logger.info("fresh preferences link for address %s…: %s", hash_[:12], result.status)
    return result.status == Status.SENT


def _claim_hour(conn: Connection, hash_: str) -> bool:
    """Record this request unless one was recorded within the hour (one transaction)."""
    now = time.time()
    with atomic(conn):
        last = conn.execute(select(link_requests.c.requested_at)
                            .where(link_requests.c.email_hash == hash_)).scalar()
        if last is not None and now - last < INTERVAL:
            return False
        conn.execute(delete(link_requests).where(link_requests.c.email_hash == hash_))
        conn.execute(insert_ignore(conn, link_requests).values(email_hash=hash_, requested_at=now))
    return True


def _release_hour(conn: Connection, hash_: str) -> None:
    with atomic(conn):
        conn.execute(delete(link_requests).where(link_requests.c.email_hash == hash_))


def _mail(settings: Settings, subscriber, locale: str, formal: bool) -> message.OutgoingMessage:
    """The mail: a new preferences link in the person's language and form of address."""
    token = tokens.sign(settings, "preferences", subscriber["email"],
                        subscriber_key=subscriber["subscriber_key"])
    link = message.link(settings, "p", token)
    use_locale(locale)
    context = {**page_context(locale), "formal": formal, "link": link}
    subject = " ".join(render_template("fresh_link_subject.txt", **context).split())
    domain = settings.sender_email.rpartition("@")[2]
    message_id = f"<{secrets.token_hex(16)}@{domain}>"
    to = formataddr((_one_line(subscriber["name"]), subscriber["email"]))
    recipient = Recipient(subscriber["id"], subscriber["email"], subscriber["name"], locale,
                          "formal" if formal else "informal", None, CAMPAIGN)
    headers = [("From", formataddr((_one_line(settings.sender_name), settings.sender_email))),
               ("To", to),
               ("Subject", subject), ("Date", format_datetime(datetime.now(timezone.utc))),
               ("Message-ID", message_id), ("Auto-Submitted", "auto-generated")]
    return message.OutgoingMessage(
        recipient=recipient, message_id=message_id, mail_from=settings.sender_email,
        rcpt_to=subscriber["email"], subject=subject, headers=headers,
        html=render_template("fresh_link.html", **context),
        text=render_template("fresh_link.txt", **context))


def _one_line(text: str | None) -> str:
    """A name for a header: no line breaks or other control characters."""
    return "".join(c for c in (text or "") if c.isprintable())
