"""The variants a send needs: one prepared (locale, view) per kind of recipient."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from postbode import audience, build, message
from postbode.audience import Recipient
from postbode.build import VariantKey
from postbode.config import Settings
from postbode.errors import CampaignError

Prepared = dict[VariantKey, message.PreparedVariant]


def variant_key(recipient: Recipient) -> VariantKey:
    """The variant a recipient gets: their locale and their segment's view."""
    return (recipient.locale, recipient.view)


def sort_key(key: VariantKey) -> tuple[str, str]:
    return (key[0], key[1] or "")


def audience_keys(conn, settings: Settings, segments: Sequence[str]) -> list[VariantKey]:
    """Every (locale, view) among the segments' recipients (one streamed pass)."""
    keys = {variant_key(r) for r in audience.resolve(conn, list(segments), settings)}
    return sorted(keys, key=sort_key)


def chosen_keys(keys: list[VariantKey], locales: Sequence[str],
                segments: Sequence[str]) -> list[VariantKey]:
    """The variants of the chosen locales (a language also picks its regions: nl picks nl_BE)."""
    if not locales:
        return keys
    chosen = [k for k in keys if any(k[0] == l or k[0].startswith(l + "_") for l in locales)]
    if not chosen:
        raise CampaignError(f"no recipient of {', '.join(segments)} reads {', '.join(locales)}; "
                            f"their locales: {', '.join(sorted({k[0] for k in keys})) or 'none'}")
    return chosen


def prepare_variants(settings: Settings, newsletter_path: Path,
                     keys: Sequence[VariantKey]) -> Prepared:
    """Render, inline and prepare every (locale, view) needed; all errors come out together."""
    if not keys:
        return {}
    locales = sorted({k[0] for k in keys})
    views = sorted({k[1] for k in keys}, key=lambda v: v or "")
    result = build.build_variants(Path(newsletter_path), locales, views, settings)
    prepared = build.prepare_all(result, settings)
    missing = [k for k in keys if k not in prepared]
    if missing:
        raise CampaignError(f"no rendered variant for {missing}; this is a bug in postbode")
    return prepared
