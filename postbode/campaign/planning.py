"""The plan: what `send` would do, shown before anything is sent, and whether to go on."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from postbode import audience, i18n, journal, personal
from postbode.campaign.fingerprint import fingerprint, refuse_if_changed
from postbode.campaign.session import Session
from postbode.campaign.states import CampaignState
from postbode.config import Settings
from postbode.content import Newsletter
from postbode.i18n import entries


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

    @property
    def total(self) -> int:
        return sum(line.recipients for line in self.lines)

    def nothing_to_do(self, resend_unknown: bool = False) -> str | None:
        """Why sending would do nothing (to be said instead of sending), or None to go on."""
        if self.total == 0 and self.resume is None:
            return ("nothing to send: no subscribed recipients in "
                    f"{', '.join(self.segments)} (see `subscribers list --segment NAME`)")
        if self.finished and not resend_unknown:
            return (f"campaign {self.campaign_id} is finished; nothing left to send "
                    "(see `report`, or add --new-campaign to send it again to everyone)")
        return None


def make_plan(session: Session, new_campaign: bool = False) -> Plan:
    """Recipients per segment × locale, who is left out, and which campaign would run."""
    s, newsletter = session.settings, session.newsletter
    counts = audience.plan_counts(session.conn, list(session.segments), s)
    result = Plan(newsletter.id, session.newsletter_path, tuple(sorted(set(session.segments))),
                  session.shown, session.base_id, left_out=dict(counts.left_out),
                  development_key=session.development_key, texts=len(entries(newsletter)),
                  lines=_plan_lines(newsletter, counts.recipients, s),
                  # one streamed pass over the recipients, only when the issue uses personal fields
                  fallbacks=personal.fallback_counts(
                      newsletter, audience.resolve(session.conn, list(session.segments), s), s))
    existing = session.latest()
    if existing and not new_campaign:
        refuse_if_changed(existing, fingerprint(s, session.newsletter_path, newsletter.id))
        result.campaign_id = existing.id
        if existing.status != CampaignState.SNAPSHOT:
            result.resume = journal.tally(session.conn, existing.id)
            result.finished = existing.status == CampaignState.FINISHED
    elif existing:
        result.campaign_id = f"{existing.base_id}--{existing.sequence + 1}"
    return result


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
