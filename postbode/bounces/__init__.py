"""Bounces and complaints for SMTP senders: VERP, a receiver, an IMAP poller, DSN/ARF parsing.

With `[bounces] domain` set, each mail's envelope sender is a VERP address
(`verp`) naming its journal row. Bounce mail comes back either to `receive`
(an SMTP/LMTP server) or to a mailbox that `fetch` reads over IMAP; both hand
each message to `process.process_message`, which parses it (`parse`), finds the
journal row it is about, decides what it means (`policy`) and applies it once
(`store` remembers every processed message). Nothing here is imported by
sending except `verp`, which must stay light.
"""
from postbode.errors import PostbodeError


class BounceError(PostbodeError):
    """A bounce mailbox or receiver cannot be used as asked (address, login, folder)."""
