"""The newsletter's fingerprint: a hash of every file that changes what recipients get.

A campaign records the fingerprint it began with. Resuming it with other files would
send two versions to one list, so a changed fingerprint is refused, naming the files.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from postbode import journal
from postbode.campaign.states import CampaignState
from postbode.config import Settings
from postbode.errors import CampaignError

SHOWN = 8  # changed files named in a refusal; the rest are counted


@dataclass(frozen=True)
class Fingerprint:
    """A SHA-256 per file (newsletter, templates, catalogs), by path relative to the project."""

    files: Mapping[str, str]

    @property
    def digest(self) -> str:
        """One hash over the file hashes, as the journal stores it."""
        return journal.content_hash(self.files)

    def changed_since(self, earlier: Mapping[str, str]) -> list[str]:
        """Files added, removed or changed since an earlier fingerprint's files."""
        return journal.changed_parts(earlier, self.files)


def fingerprint(settings: Settings, newsletter_path: Path, newsletter_id: str) -> Fingerprint:
    """The fingerprint of the newsletter as it is on disk now."""
    return Fingerprint({_name(path, settings): hashlib.sha256(path.read_bytes()).hexdigest()
                        for path in _files(settings, Path(newsletter_path), newsletter_id)})


def _files(settings: Settings, newsletter_path: Path, newsletter_id: str) -> list[Path]:
    """The newsletter file, every template file, the `messages` and newsletter catalogs."""
    files = [newsletter_path.resolve()]
    if settings.templates_dir.is_dir():
        files += sorted(p for p in settings.templates_dir.rglob("*") if p.is_file())
    if settings.locales_dir.is_dir():
        for domain in ("messages", newsletter_id):
            files += sorted(settings.locales_dir.glob(f"*/LC_MESSAGES/{domain}.po"))
    return files


def _name(path: Path, settings: Settings) -> str:
    try:
        return str(path.relative_to(settings.root))
    except ValueError:
        return str(path)


def refuse_if_changed(campaign: journal.Campaign, now: Fingerprint) -> None:
    """CampaignError when the campaign began (or was sent) with another version of the files."""
    if now.digest == campaign.content_hash:
        return
    changed = now.changed_since(campaign.content_parts)
    shown = ", ".join(changed[:SHOWN])
    if len(changed) > SHOWN:
        shown += f" and {len(changed) - SHOWN} more"
    if campaign.status == CampaignState.FINISHED:
        raise CampaignError(
            f"campaign {campaign.id} was sent with another version of this newsletter "
            f"(changed since: {shown}). To send the new version, add --new-campaign (and --again "
            "to reach those who had the earlier one)."
        )
    raise CampaignError(
        f"campaign {campaign.id} began with another version of this newsletter "
        f"(changed since: {shown}). Resuming would send two versions to one list. "
        "Undo the change to finish the campaign as it began, or add --new-campaign "
        "to start a new campaign with the new version (and --again to reach those who had "
        "the earlier one)."
    )
