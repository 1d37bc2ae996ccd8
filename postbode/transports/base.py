"""The one interface every transport offers, and the result it gives per message."""
from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Sequence

if TYPE_CHECKING:
    from postbode.message import OutgoingMessage


class Status(str, enum.Enum):
    """What became of one message; compares equal to its plain string value."""

    SENT = "sent"            # the server or provider accepted it
    REJECTED = "rejected"    # refused for good; do not send again
    RETRY = "retry"          # not accepted, nothing went out; safe to send again later
    UNKNOWN = "unknown"      # it may or may not have gone out; never resend silently

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome for one message, in the words of the server that answered."""

    message_id: str
    status: Status
    code: int | None = None
    text: str = ""
    provider_id: str | None = None
    retry_after: float | None = None   # seconds the server asked us to wait, if it said
    hard_bounce: bool = False          # the address does not exist: suppress it


def results_for(messages: Sequence["OutgoingMessage"], status: Status, code: int | None = None,
                text: str = "", **extra: object) -> list[SendResult]:
    """The same outcome for every message of a call (one HTTP request, one lost connection)."""
    return [SendResult(m.message_id, status, code, text, **extra) for m in messages]  # type: ignore[arg-type]


class Transport(ABC):
    """Where messages go. One instance is used by one thread; open N for N connections.

    `send_batch` returns one result per message, in order. Per-message outcomes are
    results, never exceptions; only a setup problem (bad URL, key, password, certificate)
    raises `TransportError`, with a message that says what to fix.
    """

    scheme: ClassVar[str] = ""
    max_batch: int = 100
    campaign: str | None = None       # set by the caller; the outbox files messages under it

    @property
    def opens_next(self) -> bool:
        """True when `send_batch(messages, following=mail)` may open `mail`'s transaction
        with the last write of the batch (SMTP PIPELINING); the next call then sends it."""
        return False

    @classmethod
    def per_worker(cls, opened: list["Transport"]) -> list["Transport"]:
        """The opened transports as the send's workers take them: one worker thread each."""
        return opened

    def open(self) -> None:
        """Connect, if this transport keeps a connection."""

    def close(self) -> None:
        """Let go of any connection; safe to call twice."""

    @abstractmethod
    def send_batch(self, messages: Sequence["OutgoingMessage"]) -> list[SendResult]:
        """Send each message once; one result per message, same order."""

    def __enter__(self) -> "Transport":
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
