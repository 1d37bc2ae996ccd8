"""The plan: what `send` would do, shown before anything is sent, and whether to go on."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from sqlalchemy import ColumnElement

from postbode import audience, i18n, journal, personal
from postbode.campaign.fingerprint import fingerprint, refuse_if_changed
from postbode.campaign.session import Session
from postbode.campaign.states import CampaignState
from postbode.config import Settings
from postbode.content import Newsletter
from postbode.i18n import entries
from postbode.store.schema import subscribers


@dataclass
class PlanLine:
    segment: str
    locale: str
    recipients: int
    chain: tuple[str, ...] = ()     # catalog languages tried for this locale, in order
    untranslated: int = 0           # newsletter texts its first catalog lacks (missing or fuzzy)


@dataclass
class Plan:
    """What `send` would do, shown before anything is sent."""

    newsletter_id: str
    newsletter_path: Path
    segments: tuple[str, ...]
    transport: str                   # secrets masked
    campaign_id: str                 # the campaign that would run (resumed or new)
    lines: list[PlanLine] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)
    resume: journal.Tally | None = None  # set when an existing campaign would be resumed
    finished: bool = False
    development_key: bool = False
    texts: int = 0                   # translatable texts of the newsletter
    fallbacks: dict[str, int] = field(default_factory=dict)  # personal field → recipients without it
    # Once per person per newsletter: who in the segments has it already, by the campaign that
    # sent it to them (`already`), or still will (`queued`: a campaign not finished yet).
    already: dict[str, int] = field(default_factory=dict)
    queued: dict[str, int] = field(default_factory=dict)
    again: bool = False              # --again: `already` are sent to as well
    earlier_versions: tuple[str, ...] = ()  # campaigns in `already` sent with other files

    @property
    def total(self) -> int:
        return sum(line.recipients for line in self.lines)

    def nothing_to_do(self, resend_unknown: bool = False) -> str | None:
        """Why sending would do nothing (to be said instead of sending), or None to go on."""
        if self.total == 0 and self.resume is None and (self.already or self.queued):
            return ("nothing to send: everyone in "
                    f"{', '.join(self.segments)} already has this newsletter (see above); "
                    "add --again to send it to them again")
        if self.total == 0 and self.resume is None:
            return ("nothing to send: no subscribed recipients in "
                    f"{', '.join(self.segments)} (see `subscribers list --segment NAME`)")
        if self.finished and not resend_unknown:
            return (f"campaign {self.campaign_id} is finished; nothing left to send "
                    "(see `report`; --new-campaign --again sends it again to everyone, "
                    "--new-campaign alone reaches only people who do not have it yet)")
        return None


def leave_out(session: Session, own: str | None) -> ColumnElement[bool]:
    """Subscribers who already have this newsletter (see journal.has_newsletter)."""
    return journal.has_newsletter(session.newsletter.id, session.base_id, own,
                                  subscribers.c.email_hash)


def make_plan(session: Session, new_campaign: bool = False, again: bool = False) -> Plan:
    """Recipients per segment × locale, who is left out, and which campaign would run."""
    s, newsletter = session.settings, session.newsletter
    existing = session.latest()
    own = existing.id if existing and not new_campaign else None
    mark = journal.holder(newsletter.id, session.base_id, own, subscribers.c.email_hash)
    counts = audience.plan_counts(session.conn, list(session.segments), s, mark=mark,
                                  leave_out_marked=not again)
    reached = audience.resolve(session.conn, list(session.segments), s,
                               leave_out=None if again else leave_out(session, own))
    result = Plan(newsletter.id, session.newsletter_path, tuple(sorted(set(session.segments))),
                  session.shown, session.base_id, left_out=dict(counts.left_out),
                  development_key=session.development_key, texts=len(entries(newsletter)),
                  lines=_plan_lines(newsletter, counts.recipients, s), again=again,
                  # one streamed pass over the recipients, only when the issue uses personal fields
                  fallbacks=personal.fallback_counts(newsletter, reached, s))
    _holders(result, counts.marked)
    now = fingerprint(s, session.newsletter_path, newsletter.id)
    result.earlier_versions = _earlier_versions(session, result.already, now.digest)
    if existing and not new_campaign:
        refuse_if_changed(existing, now)
        result.campaign_id = existing.id
        if existing.status != CampaignState.SNAPSHOT:
            result.resume = journal.tally(session.conn, existing.id)
            result.finished = existing.status == CampaignState.FINISHED
            result.already, result.queued = dict(existing.already_received), {}
    elif existing:
        result.campaign_id = f"{existing.base_id}--{existing.sequence + 1}"
    return result


def _holders(plan: Plan, marked: Mapping[str, int]) -> None:
    """Sort `received:<campaign>` / `queued:<campaign>` counts into the plan."""
    for mark, n in marked.items():
        kind, _, campaign_id = mark.partition(":")
        target = plan.already if kind == "received" else plan.queued
        target[campaign_id] = target.get(campaign_id, 0) + n


def _earlier_versions(session: Session, campaign_ids: Mapping[str, int],
                      digest: str) -> tuple[str, ...]:
    """Those of the campaigns that were sent with other files than the newsletter has now."""
    found = (journal.get_campaign(session.conn, cid) for cid in campaign_ids)
    return tuple(c.id for c in found if c is not None and c.content_hash != digest)


def _plan_lines(newsletter: Newsletter, recipients: Mapping[tuple[str, str], int],
                settings: Settings) -> list[PlanLine]:
    """One line per (segment, locale); each language's catalog is read once, not once per segment."""
    untranslated: dict[str, int] = {}
    lines = []
    for (segment, locale), n in recipients.items():
        chain = tuple(i18n.locale_chain(locale, settings))
        if chain[0] not in untranslated:
            untranslated[chain[0]] = _untranslated(newsletter, chain[0], settings)
        lines.append(PlanLine(segment, locale, n, chain, untranslated[chain[0]]))
    return lines


def _untranslated(newsletter: Newsletter, language: str, settings: Settings) -> int:
    """How many of the newsletter's texts fall back from this language's catalog."""
    if language == settings.source_locale:
        return 0
    report = i18n.completeness(newsletter, language, settings)
    return len(report.missing) + len(report.fuzzy)
