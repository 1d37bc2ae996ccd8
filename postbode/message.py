"""Message stage: per recipient, personalised bytes from a prepared variant (substitution only)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from postbode.audience import Recipient


@dataclass
class OutgoingMessage:
    """One personalised mail, ready for a transport."""

    recipient: Recipient
    message_id: str                       # "<…@…>", deterministic per (campaign, recipient)
    mail_from: str                        # envelope sender (bare address)
    rcpt_to: str                          # envelope recipient (bare address)
    subject: str
    headers: list[tuple[str, str]]        # every header, in order, values already checked
    html: str
    text: str
    variant: Any = None                   # the PreparedVariant it was built from
    values: Mapping[str, str] = field(default_factory=dict)  # marker → raw value
    _bytes: bytes | None = field(default=None, repr=False)

    def as_bytes(self) -> bytes:
        """RFC 5322 bytes of the whole message, built once."""
        raise NotImplementedError
