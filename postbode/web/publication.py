"""What the public web may show: only sent or published newsletters, their translated
languages, and a segment's view only to a reader holding that view's signed link.

A draft dropped into newsletters/ stays off the web until it is sent (a campaign of it
is in the journal) or marked `published: true`. A segment view (the funders' edition)
is never public: the mail of that view links it with a token (`message.view_token`).
"""
from __future__ import annotations

import sqlite3

from flask import current_app, g
from sqlalchemy.exc import SQLAlchemyError

from postbode import i18n, journal, tokens
from postbode.config import Settings
from postbode.content import Newsletter
from postbode.errors import PostbodeError
from postbode.i18n.extract import entries
from postbode.web.db import get_db


def sent_newsletter_ids() -> frozenset[str]:
    """Ids of the newsletters with a campaign in the journal (read once per request)."""
    if "sent_ids" not in g:
        try:
            g.sent_ids = frozenset(c.newsletter_id for c in journal.list_campaigns(get_db()))
        except (sqlite3.Error, SQLAlchemyError, PostbodeError) as err:
            # no database (yet), no journal in it, or none reachable: show only what is
            # marked published, never a draft
            current_app.logger.info("journal not readable, showing published issues only: %s", err)
            g.sent_ids = frozenset()
    return g.sent_ids


def is_public(newsletter: Newsletter) -> bool:
    """Sent, or marked `published: true`; never a draft."""
    return newsletter.published or newsletter.id in sent_newsletter_ids()


def may_see_view(settings: Settings, newsletter_id: str, view: str, token: str | None) -> bool:
    """Whether `token` is the signed web-version link of this newsletter's `view`."""
    if not token:
        return False
    try:
        payload = tokens.verify(settings, "web", token)
    except tokens.InvalidToken:
        return False
    return payload.get("n") == newsletter_id and payload.get("v") == view


def archive_locales(newsletter: Newsletter, settings: Settings) -> list[str]:
    """The configured locales whose language this issue is translated into (or is written in)."""
    source = settings.source_locale.split("_")[0]
    return [code for code in settings.locales
            if code.split("_")[0] == source or has_translation(newsletter, code.split("_")[0], settings)]


def has_translation(newsletter: Newsletter, language: str, settings: Settings) -> bool:
    """The issue's catalog for `language` translates some of it, and enough to be sent."""
    report = i18n.completeness(newsletter, language, settings)
    untranslated = len(report.missing) + len(report.fuzzy) + len(report.refused)
    if untranslated >= len(entries(newsletter)):
        return False
    return report.policy != "require" or report.complete
