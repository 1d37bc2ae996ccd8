"""Confirmation mails of the sign-up (double opt-in): a campaign kind of their own.

Each mail is journaled like a newsletter's: a row in the hour's confirmation campaign
(`confirmation--2026-12-01T13`), claimed and committed before it leaves, its outcome
recorded after. The journal's unique (campaign, address) lets one address get at most
one confirmation per campaign hour, however many web workers try. They count toward
the hourly and daily quotas like any sent mail.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from postbode import i18n, inline, journal, message, render, tokens
from postbode.audience import Recipient
from postbode.audience.segments import list_text, load_lists
from postbode.audience.resolve import effective_locale
from postbode.audience.signup import Confirmed, Pending
from postbode.build import build_variants
from postbode.content import load_newsletter
from postbode.config import Settings
from postbode.store import Connection
from postbode.transports import SendResult, Status, describe, open_transport

TEMPLATE = "confirm"
QUOTA_TEXT = "not sent: the hourly or daily quota of [send] in postbode.toml is reached"


@dataclass(frozen=True)
class Sent:
    """What became of one confirmation mail: its journal row and the transport's answer."""

    campaign_id: str
    row_id: int | None         # None: this campaign hour already has a mail for the address
    result: SendResult | None


def campaign_id(at: float | None = None) -> str:
    """The confirmation campaign of the hour (UTC)."""
    hour = datetime.fromtimestamp(time.time() if at is None else at, timezone.utc)
    return f"confirmation--{hour:%Y-%m-%dT%H}"


def confirm_url(settings: Settings, pending: Pending) -> str:
    token = tokens.sign(settings, "confirm", pending.email, s=pending.key)
    return message.link(settings, "confirm", token)


def build(settings: Settings, pending: Pending, cid: str) -> message.OutgoingMessage:
    """The localised confirmation mail from templates/confirm.html and .txt, CSS inlined."""
    translations = i18n.load_translations(pending.locale, settings)
    declared = load_lists(settings)
    lists = [{"name": name, "consent": list_text(translations, "consent", declared[name].consent)
              if name in declared and declared[name].consent else name} for name in pending.lists]
    subject = render.template_string(settings, pending.locale, translations, "confirmation_subject")
    html, text = render.render_mail(settings, pending.locale, translations, TEMPLATE, {
        "subject": subject, "lists": lists, "confirm_url": confirm_url(settings, pending),
        "days": settings.confirm_link_days})
    html = inline.inline_html(html, "templates/confirm.html")
    recipient = Recipient(None, pending.email, pending.name, pending.locale, "formal", None,
                          str(journal.CampaignKind.CONFIRMATION))
    return message.transactional(settings, recipient, subject, html, text, cid)


def send(conn: Connection, settings: Settings, pending: Pending) -> Sent:
    """Journal and send one confirmation mail, exactly once (see the module's first lines)."""
    cid = campaign_id()
    mail = build(settings, pending, cid)  # a template error raises before the journal is touched
    return _send_once(conn, settings, cid, mail, journal.CampaignKind.CONFIRMATION)


def send_welcome(conn: Connection, settings: Settings, confirmed: Confirmed) -> list[Sent]:
    """Each joined list's welcome newsletter (segments.yaml `welcome:`), once per person ever:
    the same build as a campaign's mail, journaled in `<newsletter id>--welcome`."""
    declared, sent = load_lists(settings), []
    for name in confirmed.lists:
        spec = declared.get(name)
        if spec is None or spec.welcome is None:
            continue
        locale = effective_locale(confirmed.locale, settings)
        newsletter = load_newsletter(spec.welcome, source_locale=settings.source_locale)
        result = build_variants(spec.welcome, [locale], [None], settings)
        variant = message.prepare(result.variant(locale, None), settings)
        cid = f"{newsletter.id}--welcome"
        recipient = Recipient(confirmed.subscriber_id, confirmed.email, confirmed.name, locale,
                              confirmed.formality, None, name)
        sent.append(_send_once(conn, settings, cid, message.build(variant, recipient, cid, settings),
                               journal.CampaignKind.WELCOME, newsletter.id))
    return sent


def _send_once(conn: Connection, settings: Settings, cid: str, mail: message.OutgoingMessage,
               kind: journal.CampaignKind, newsletter_id: str | None = None) -> Sent:
    """Journal one mail in a campaign of mails sent one by one, then send it, exactly once."""
    journal.open_transactional(conn, cid, kind, describe(settings.transport), newsletter_id)
    row_id = journal.add_row(conn, cid, mail.recipient)
    if row_id is None or not journal.claim_row(conn, row_id, mail.message_id):
        return Sent(cid, None, None)
    if _over_quota(conn, settings):
        journal.record(conn, [journal.Outcome(row_id, journal.State.REJECTED, None, QUOTA_TEXT)])
        return Sent(cid, row_id, None)
    result = _transmit(settings, cid, mail)
    journal.record(conn, [journal.Outcome(row_id, _state(result), result.code, result.text or None,
                                          result.provider_id, None, result.message_id)])
    return Sent(cid, row_id, result)


def _transmit(settings: Settings, cid: str, mail: message.OutgoingMessage) -> SendResult:
    """One message through the configured transport; a failure is the row's `unknown` outcome."""
    try:
        with open_transport(settings.transport, settings, campaign=cid) as transport:
            results = transport.send_batch([mail])
    except Exception as err:  # noqa: BLE001 - recorded on the row; the mail may have left
        return SendResult(mail.message_id, Status.UNKNOWN, None, f"transport failed: {err}")
    return results[0] if results else SendResult(mail.message_id, Status.UNKNOWN, None, "no result")


def _state(result: SendResult) -> journal.State:
    """A confirmation is not retried later: a transient failure is recorded as rejected."""
    if result.status == Status.RETRY:
        return journal.State.REJECTED
    return journal.State(str(result.status))


def _over_quota(conn: Connection, settings: Settings) -> bool:
    now = time.time()
    for quota, window in ((settings.hourly_quota, 3600), (settings.daily_quota, 86400)):
        if quota and journal.sent_since(conn, now - window) >= quota:
            return True
    return False
