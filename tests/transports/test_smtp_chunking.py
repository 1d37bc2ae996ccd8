"""SMTP with CHUNKING (RFC 3030): the envelope and the whole message in one write.

Against a real aiosmtpd taught BDAT (tests/fixtures/smtp.py): what reaches the server,
and what a refused envelope, a 421 and a dropped connection leave behind.
"""
from __future__ import annotations

import socket
import time

import pytest

from postbode.transports import Status, open_transport
from postbode.transports.smtp import SmtpConnections

from fixtures.smtp import RecordingHandler, SmtpTestServer, _chunking_controller, free_port

ADDRESSES = [f"lezer{n}@example.org" for n in range(6)]


@pytest.fixture
def chunking_relay():
    handler = RecordingHandler(pipelining=True, chunking=True)
    controller = _chunking_controller(handler, hostname="127.0.0.1", port=free_port(),
                                      enable_SMTPUTF8=True, ready_timeout=10)
    controller.start()
    yield SmtpTestServer("127.0.0.1", controller.port, "smtp", None, handler)
    controller.stop()


def _one_transport(url, settings, connections: int):
    """`connections` opened SMTP transports as the sender would drive them."""
    opened = [open_transport(url, settings, env={}) for _ in range(connections)]
    for transport in opened:
        transport.open()
    (worker,) = type(opened[0]).per_worker(opened) if connections > 1 else opened
    return worker


@pytest.mark.parametrize("connections", [1, 3])
def test_a_dropped_connection_after_the_chunk_leaves_that_mail_unknown_and_the_rest_go(
        chunking_relay, settings, outgoing, connections):
    chunking_relay.faults.drop_during_data = {ADDRESSES[2]}
    messages = [outgoing(address, n) for n, address in enumerate(ADDRESSES)]
    transport = _one_transport(chunking_relay.url, settings, connections)
    assert isinstance(transport, SmtpConnections) == (connections > 1)
    try:
        results = transport.send_batch(messages)
    finally:
        transport.close()
    assert [str(r.status) for r in results] == ["sent", "sent", "unknown", "sent", "sent", "sent"]
    assert "may have been delivered" in results[2].text
    assert sorted(m.rcpt_tos[0] for m in chunking_relay.received) == sorted(
        a for a in ADDRESSES if a != ADDRESSES[2])
    assert all(mail.chunked for mail in chunking_relay.received)


@pytest.mark.parametrize("connections", [1, 3])
def test_a_421_to_rcpt_sends_the_mail_again_on_a_fresh_connection(chunking_relay, settings, outgoing,
                                                                  connections):
    handler = chunking_relay.handler
    recorded, closing = handler.handle_RCPT, {ADDRESSES[1]: 1}

    async def closing_rcpt(server, session, envelope, address, rcpt_options):
        if closing.get(address):
            closing[address] -= 1
            return "421 4.3.2 Service shutting down, try again"
        return await recorded(server, session, envelope, address, rcpt_options)

    handler.handle_RCPT = closing_rcpt
    messages = [outgoing(address, n) for n, address in enumerate(ADDRESSES[:4])]
    transport = _one_transport(chunking_relay.url, settings, connections)
    try:
        results = transport.send_batch(messages)
    finally:
        transport.close()
    assert [r.status for r in results] == [Status.SENT] * 4
    # the chunk that followed the 421 was not taken: each address got its mail once
    assert sorted(m.rcpt_tos[0] for m in chunking_relay.received) == ADDRESSES[:4]


def test_a_connection_closed_before_the_write_sends_the_mail_on_a_fresh_one(chunking_relay, settings,
                                                                           outgoing):
    with open_transport(chunking_relay.url, settings, env={}) as transport:
        assert transport.send_batch([outgoing(ADDRESSES[0], 0)])[0].status == Status.SENT
        transport._smtp.sock.shutdown(socket.SHUT_RDWR)  # as a server's idle timeout would
        result = transport.send_batch([outgoing(ADDRESSES[1], 1)])[0]
    assert result.status == Status.SENT
    assert [mail.rcpt_tos[0] for mail in chunking_relay.received] == ADDRESSES[:2]


def test_a_server_without_pipelining_gets_data_even_if_it_offers_chunking(settings, outgoing):
    handler = RecordingHandler(pipelining=False, chunking=True)
    controller = _chunking_controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    try:
        with open_transport(f"smtp://127.0.0.1:{controller.port}?tls=none", settings, env={}) as transport:
            results = transport.send_batch([outgoing(a, n) for n, a in enumerate(ADDRESSES[:2])])
    finally:
        controller.stop()
    assert [r.status for r in results] == [Status.SENT] * 2
    assert [mail.chunked for mail in handler.received] == [False, False]


@pytest.mark.slow
def test_a_real_postfix_takes_each_mail_in_one_bdat_exactly_as_built(postfix, settings, outgoing):
    from fixtures.postfix import EXISTING, EXISTING_TOO

    mta = postfix()
    messages = [outgoing(EXISTING, 0, text=".dot first\n..two\n"), outgoing(EXISTING_TOO, 1)]
    with open_transport(mta.smtp_url, settings, env={}) as transport:
        assert transport.chunks(transport._smtp)        # Postfix offers PIPELINING and CHUNKING
        results = transport.send_batch(messages)
    assert [r.status for r in results] == [Status.SENT] * 2 and all(r.provider_id for r in results)
    for user, message in (("reader", messages[0]), ("lotte", messages[1])):
        deadline = time.monotonic() + 60
        while not mta.delivered(user) and time.monotonic() < deadline:
            time.sleep(0.1)
        (stored,) = mta.delivered(user)
        # Postfix puts its own trace headers in front and stores LF line ends
        got, sent = stored.read_bytes(), message.as_bytes().replace(b"\r\n", b"\n")
        # Postfix adds its trace headers (and a Date to a mail without one), stores LF ends
        got_head, _, got_body = got.partition(b"\n\n")
        sent_head, _, sent_body = sent.partition(b"\n\n")
        assert got_body == sent_body, mta.log()
        ours = sent_head.split(b"\n")
        assert [line for line in got_head.split(b"\n") if line in ours] == ours
