"""What another system's export says about a person's consent, in postbode's terms.

Mailchimp exports one file per status (subscribed, unsubscribed with
`UNSUB_TIME`, cleaned with `CLEAN_TIME`); listmonk has a `status` column
(enabled, disabled, blocklisted); CRM and Excel files have a `status` or
`consent` column in Dutch or English. Each becomes a `FileStatus`; the ones that
suppress never lead to a subscribed address.
"""
from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum

from postbode.audience.model import SuppressionReason


class FileStatus(StrEnum):
    """A row's status as the file gives it."""

    SUBSCRIBED = "subscribed"
    UNCONFIRMED = "unconfirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    BLOCKLISTED = "blocklisted"

    @property
    def suppresses(self) -> bool:
        return self in SUPPRESSING

    @property
    def rank(self) -> int:
        """Which of two statuses for one address wins: the one that allows less mail."""
        return (0 if self == FileStatus.SUBSCRIBED else 1 if self == FileStatus.UNCONFIRMED else 2)


# The suppression reason each suppressing status is stored with; a blocklisted address is
# blocked by the sender's decision (listmonk's blocklist), so `manual`.
SUPPRESSING = {
    FileStatus.UNSUBSCRIBED: SuppressionReason.UNSUBSCRIBED,
    FileStatus.BOUNCED: SuppressionReason.BOUNCED,
    FileStatus.COMPLAINED: SuppressionReason.COMPLAINED,
    FileStatus.BLOCKLISTED: SuppressionReason.MANUAL,
}

# Words seen in status columns, after lower-casing and dropping spaces, dashes and underscores.
WORDS: dict[FileStatus, tuple[str, ...]] = {
    FileStatus.SUBSCRIBED: ("subscribed", "enabled", "active", "actief", "ingeschreven", "aangemeld",
                            "confirmed", "bevestigd", "optedin", "optin", "ja", "yes", "member", "lid"),
    FileStatus.UNCONFIRMED: ("unconfirmed", "onbevestigd", "nietbevestigd", "pending", "inafwachting",
                             "disabled", "uitgeschakeld", "transactional"),
    FileStatus.UNSUBSCRIBED: ("unsubscribed", "afgemeld", "uitgeschreven", "optedout", "optout",
                              "unsubscribe", "afmelding"),
    FileStatus.BOUNCED: ("bounced", "gebounced", "bounce", "cleaned", "opgeschoond", "onbestelbaar",
                         "hardbounce", "invalid", "ongeldig"),
    FileStatus.COMPLAINED: ("complained", "complaint", "klacht", "spam", "spamklacht", "gemeldalsspam"),
    FileStatus.BLOCKLISTED: ("blocklisted", "blacklisted", "blocked", "geblokkeerd", "blokkeerlijst",
                             "zwartelijst", "denylisted"),
}
_LOOKUP = {word: status for status, words in WORDS.items() for word in words}

# Mailchimp's own columns: the ones that say which export a file is, and the technical
# ones that are not about the person (IP addresses, ratings, ids) and are not kept.
MAILCHIMP_MARKERS = {"memberrating", "leid", "euid", "optintime"}
MAILCHIMP_TECHNICAL = {
    "memberrating", "optintime", "optinip", "confirmtime", "confirmip", "latitude", "longitude",
    "gmtoff", "dstoff", "timezone", "cc", "region", "lastchanged", "leid", "euid", "notes",
    "unsubtime", "unsubcampaigntitle", "unsubcampaignid", "unsubreason", "unsubreasonother",
    "cleantime", "cleancampaigntitle", "cleancampaignid",
}
# listmonk's export: uuid,email,name,attributes,status,created_at,updated_at
LISTMONK_COLUMNS = {"uuid", "email", "name", "attributes", "status", "createdat", "updatedat"}
LISTMONK_TECHNICAL = {"uuid", "createdat", "updatedat"}


def word_key(value: str) -> str:
    return "".join(ch for ch in value.strip().lower() if ch not in " -_.")


def status_of(value: str) -> FileStatus | None:
    """The status a word in a status or consent column stands for; None if unknown."""
    return _LOOKUP.get(word_key(value))


def known_words() -> str:
    """Examples for an error message."""
    return "subscribed/ingeschreven, unconfirmed, unsubscribed/afgemeld, bounced/gebounced/cleaned, " \
           "complained/klacht, blocklisted/geblokkeerd"


def file_kind(keys: set[str]) -> tuple[str, FileStatus | None, str | None]:
    """(source system, status of every row, column holding the status time) from the header keys."""
    if keys & MAILCHIMP_MARKERS and "emailaddress" in keys:
        if "unsubtime" in keys:
            return "Mailchimp (unsubscribed)", FileStatus.UNSUBSCRIBED, "unsubtime"
        if "cleantime" in keys:
            return "Mailchimp (cleaned)", FileStatus.BOUNCED, "cleantime"
        return "Mailchimp (subscribed)", FileStatus.SUBSCRIBED, None
    if LISTMONK_COLUMNS <= keys:
        return "listmonk", None, "updatedat"
    return "", None, None


def technical_columns(kind: str) -> set[str]:
    """Columns of this source system that are not kept."""
    if kind.startswith("Mailchimp"):
        return MAILCHIMP_TECHNICAL
    if kind == "listmonk":
        return LISTMONK_TECHNICAL
    return set()


def stored_time(value: str) -> str | None:
    """A time from an export (`2024-03-01 09:00:00`, ISO 8601 with an offset) as stored: UTC, or None."""
    text = value.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:  # Mailchimp writes UTC without saying so
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
