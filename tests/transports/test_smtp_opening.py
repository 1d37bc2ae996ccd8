"""SMTP with PIPELINING only: the next mail's transaction opened with this mail's data.

One round trip a mail on one connection (RFC 2920: the end of data, then MAIL, RCPT
and DATA of the next mail, in one write). Its content follows only in the next call,
after the sender has claimed its row; anything else abandons it, and the server
delivers nothing of it. Against a real aiosmtpd that offers PIPELINING.
"""
from __future__ import annotations

import pytest

from postbode.transports import Status, open_transport

from fixtures.smtp import RecordingHandler, SmtpTestServer, _chunking_controller, free_port

A, B, C = "anna@example.org", "bram@example.org", "cees@example.org"


@pytest.fixture
def pipelining_relay():
    handler = RecordingHandler(pipelining=True)
    controller = _chunking_controller(handler, hostname="127.0.0.1", port=free_port(),
                                      enable_SMTPUTF8=False, ready_timeout=10)
    controller.start()
    yield SmtpTestServer("127.0.0.1", controller.port, "smtp", None, handler)
    controller.stop()


def _received(relay) -> list[str]:
    return [mail.rcpt_tos[0] for mail in relay.received]


def test_the_next_mail_is_opened_with_this_ones_data_and_sent_by_the_next_call(
        pipelining_relay, settings, outgoing):
    a, b = outgoing(A, 1), outgoing(B, 2)
    with open_transport(pipelining_relay.url, settings, env={}) as transport:
        assert transport.opens_next
        assert [r.status for r in transport.send_batch([a], following=b)] == [Status.SENT]
        # B's envelope was answered, but nothing of B is delivered before its own call
        assert (B, "250 OK") in pipelining_relay.handler.answers and _received(pipelining_relay) == [A]
        assert [r.status for r in transport.send_batch([b])] == [Status.SENT]
    assert _received(pipelining_relay) == [A, B]
    assert pipelining_relay.received[1].raw == b.as_bytes()


def test_another_mail_first_abandons_the_opened_one(pipelining_relay, settings, outgoing):
    with open_transport(pipelining_relay.url, settings, env={}) as transport:
        transport.send_batch([outgoing(A, 1)], following=outgoing(B, 2))
        assert [r.status for r in transport.send_batch([outgoing(C, 3)])] == [Status.SENT]
    assert _received(pipelining_relay) == [A, C]         # B's open transaction died with its connection


def test_closing_with_a_transaction_open_delivers_nothing_of_it(pipelining_relay, settings, outgoing):
    transport = open_transport(pipelining_relay.url, settings, env={})
    transport.open()
    transport.send_batch([outgoing(A, 1)], following=outgoing(B, 2))
    transport.close()                                    # no QUIT: it would be read as B's content
    assert _received(pipelining_relay) == [A]


def test_a_refused_opening_is_not_the_mails_result_which_comes_when_it_is_sent(
        pipelining_relay, settings, outgoing):
    pipelining_relay.faults.reject = {B}
    with open_transport(pipelining_relay.url, settings, env={}) as transport:
        assert transport.send_batch([outgoing(A, 1)], following=outgoing(B, 2))[0].status == Status.SENT
        (refused,) = transport.send_batch([outgoing(B, 2)], following=outgoing(C, 3))
        assert refused.status == Status.REJECTED and refused.hard_bounce
        assert transport.send_batch([outgoing(C, 3)])[0].status == Status.SENT
    assert _received(pipelining_relay) == [A, C]


def test_a_mail_that_needs_smtputf8_is_not_opened_on_a_server_without_it(
        pipelining_relay, settings, outgoing):
    with open_transport(pipelining_relay.url, settings, env={}) as transport:
        transport.send_batch([outgoing(A, 1)], following=outgoing("jürgen@example.org", 2))
        (result,) = transport.send_batch([outgoing("jürgen@example.org", 2)])
        assert result.status == Status.REJECTED and "SMTPUTF8" in result.text
        assert transport.send_batch([outgoing(C, 3)])[0].status == Status.SENT
    assert _received(pipelining_relay) == [A, C]


def test_a_server_without_pipelining_gets_each_mail_on_its_own(settings, outgoing):
    handler = RecordingHandler(pipelining=False)
    controller = _chunking_controller(handler, hostname="127.0.0.1", port=free_port(), ready_timeout=10)
    controller.start()
    try:
        relay = SmtpTestServer("127.0.0.1", controller.port, "smtp", None, handler)
        with open_transport(relay.url, settings, env={}) as transport:
            assert not transport.opens_next
            transport.send_batch([outgoing(A, 1)], following=outgoing(B, 2))
            assert [m.rcpt_tos for m in handler.received] == [[A]] and not handler.answers[1:]
            transport.send_batch([outgoing(B, 2)])
    finally:
        controller.stop()
    assert [m.rcpt_tos[0] for m in handler.received] == [A, B]
