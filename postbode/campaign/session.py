"""The opening every campaign entry point shares: transport URL, signing key, newsletter, database.

Done once, in this order, so a wrong URL, a missing credential or a missing key is refused
before the journal is touched.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from postbode import journal, store, tokens
from postbode.config import Settings
from postbode.content import Newsletter, load_newsletter
from postbode.transports import describe, open_transport, parse_url


@dataclass(frozen=True)
class Session:
    """What one command works with: checked settings, the newsletter, one database connection."""

    settings: Settings              # carries a signing key
    url: str                        # the transport URL (may hold a secret: print `shown`)
    newsletter: Newsletter
    newsletter_path: Path
    segments: tuple[str, ...]
    development_key: bool           # links are signed with the labelled development key
    conn: store.Connection

    @property
    def shown(self) -> str:
        """The transport URL with any secret masked."""
        return describe(self.url)

    @property
    def base_id(self) -> str:
        """The campaign id every send of this newsletter to these segments shares."""
        return journal.base_id(self.newsletter.id, self.segments)

    def latest(self) -> journal.Campaign | None:
        """The most recent campaign of this newsletter to these segments."""
        return journal.latest_campaign(self.conn, self.newsletter.id, self.segments)


@contextmanager
def open_session(settings: Settings, newsletter_path: Path, segments: Sequence[str],
                 transport: str | None = None) -> Iterator[Session]:
    """Check the transport and the key, load the newsletter, connect; closed on the way out."""
    url = transport or settings.transport
    settings, development = signing_settings(settings, url)
    check_transport(url, settings)
    newsletter = load_newsletter(Path(newsletter_path))
    conn = store.connect(settings)
    try:
        yield Session(settings, url, newsletter, Path(newsletter_path), tuple(segments),
                      development, conn)
    finally:
        conn.close()


def check_transport(url: str, settings: Settings) -> None:
    """Refuse a URL, option or missing credential now (TransportError), not in a worker."""
    parse_url(url)
    open_transport(url, settings).close()  # configured, not connected: no network yet


def signing_settings(settings: Settings, url: str) -> tuple[Settings, bool]:
    """Settings with a signing key: the outbox may use the labelled development key, others not."""
    if parse_url(url).scheme == "outbox":
        return tokens.with_development_key(settings)
    tokens.require_production_key(settings)  # no key, a short one or the development key: ConfigError
    return settings, False
