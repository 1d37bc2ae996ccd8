"""`bounces receive`: an SMTP (or LMTP) server, on aiosmtpd, for the bounce domain only.

It is what the bounce domain's MX, or a Postfix `transport` entry, points at. Mail
for the bounce domain is processed and answered 250 (also when it names no mail of
ours: it is logged and left alone); mail for any other domain is refused with 550.
A mail that cannot be processed now (the database is busy) is answered 451, so the
sending server tries again later.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from typing import Callable

from postbode import store
from postbode.bounces import verp
from postbode.bounces.process import process_message
from postbode.config import Settings

log = logging.getLogger(__name__)
MAX_SIZE = 10 * 1024 * 1024    # a bounce with the whole original attached still fits


class BounceHandler:
    """aiosmtpd handler: RCPT only for the bounce domain; DATA processed with one connection."""

    def __init__(self, settings: Settings, lmtp: bool = False):
        self.settings = settings
        self.lmtp = lmtp
        self.conn = store.connect(settings)
        self.processed = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not verp.is_ours(self.settings, address):
            return f"550 5.1.2 this server only takes bounces for {self.settings.bounce_domain}"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        try:
            result = process_message(self.conn, self.settings, data,
                                     envelope_to=envelope.rcpt_tos, source="receiver")
        except Exception:   # noqa: BLE001 — any failure here must become "try again", not a loss
            log.exception("could not process a bounce; the sender will try again")
            reply = "451 4.3.0 cannot process this now, try again later"
        else:
            self.processed += 1
            reply = f"250 2.0.0 {result.outcome}"
        # LMTP answers once per recipient
        return "\r\n".join([reply] * len(envelope.rcpt_tos)) if self.lmtp else reply

    def close(self) -> None:
        self.conn.close()


async def serve(settings: Settings, host: str, port: int, *, lmtp: bool = False,
                ready: Callable[[str, int], None] | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Listen until `stop` is set (or SIGTERM/SIGINT); `ready(host, port)` once listening."""
    from aiosmtpd.lmtp import LMTP
    from aiosmtpd.smtp import SMTP

    handler = BounceHandler(settings, lmtp)
    protocol = LMTP if lmtp else SMTP
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: protocol(handler, hostname=settings.bounce_domain, data_size_limit=MAX_SIZE,
                         enable_SMTPUTF8=True, ident="postbode bounce receiver"),
        host=host, port=port)
    stop = stop or asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        bound = server.sockets[0].getsockname()
        if ready:
            ready(bound[0], bound[1])
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        handler.close()


def run(settings: Settings, host: str, port: int, *, lmtp: bool = False,
        ready: Callable[[str, int], None] | None = None) -> None:
    """Serve in the foreground until stopped."""
    asyncio.run(serve(settings, host, port, lmtp=lmtp, ready=ready))
