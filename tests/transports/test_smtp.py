"""SMTP transport against a real aiosmtpd: STARTTLS + AUTH, implicit TLS, injected faults."""
from __future__ import annotations

import dataclasses
import random
import socket
import threading

import pytest

from postbode.errors import TransportError
from postbode.transports import Status, open_transport
from postbode.message import dot_stuffed
from postbode.transports.smtp import _stuffed, is_hard_bounce


def _addresses(count: int) -> list[str]:
    return [f"lezer{n:04d}@example.org" for n in range(count)]


def _send_all(transport, messages) -> list:
    results = []
    for start in range(0, len(messages), 50):
        results += transport.send_batch(messages[start:start + 50])
    return results


@pytest.mark.parametrize("server_fixture", ["smtp_server", "smtps_server"])
def test_500_messages_over_one_connection_arrive_once_each(request, settings, outgoing, server_fixture):
    server = request.getfixturevalue(server_fixture)
    messages = [outgoing(address, n) for n, address in enumerate(_addresses(500))]
    with open_transport(server.url, settings, env=server.env) as transport:
        first_connection = transport._smtp
        results = _send_all(transport, messages)
        assert transport._smtp is first_connection  # reused, never reconnected
    assert [r.status for r in results] == [Status.SENT] * 500
    assert [r.message_id for r in results] == [m.message_id for m in messages]
    assert len(server.received) == 500
    by_recipient = {mail.rcpt_tos[0]: mail for mail in server.received}
    assert sorted(by_recipient) == _addresses(500)
    for message in messages:
        mail = by_recipient[message.rcpt_to]
        assert mail.rcpt_tos == [message.rcpt_to]
        assert mail.mail_from == "bounces@example.org"
        assert mail.message["Message-ID"] == message.message_id
        assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail.message["List-Unsubscribe"] == dict(message.headers)["List-Unsubscribe"]
        assert mail.message.get_content_type() == "multipart/alternative"
    assert results[0].provider_id.startswith("Q")


def test_random_451_become_retry_results_and_nothing_else_is_lost(smtp_server, settings, outgoing):
    smtp_server.faults.random_451_rate = 0.10
    messages = [outgoing(address, n) for n, address in enumerate(_addresses(300))]
    with open_transport(smtp_server.url, settings, env=smtp_server.env) as transport:
        results = _send_all(transport, messages)
    answered_451 = {address for address, reply in smtp_server.handler.answers if reply.startswith("451")}
    retried = {m.rcpt_to for m, r in zip(messages, results) if r.status == Status.RETRY}
    sent = {m.rcpt_to for m, r in zip(messages, results) if r.status == Status.SENT}
    assert 10 < len(retried) < 60
    assert retried == answered_451
    assert all(r.code == 451 and not r.hard_bounce for r in results if r.status == Status.RETRY)
    assert sent == {mail.rcpt_tos[0] for mail in smtp_server.received}
    assert len(sent) + len(retried) == 300


def test_550_for_given_addresses_is_a_hard_bounce(smtp_server, settings, outgoing):
    smtp_server.faults.reject = {"lezer0003@example.org", "lezer0007@example.org"}
    messages = [outgoing(address, n) for n, address in enumerate(_addresses(10))]
    with open_transport(smtp_server.url, settings, env=smtp_server.env) as transport:
        results = transport.send_batch(messages)
    rejected = {m.rcpt_to: r for m, r in zip(messages, results) if r.status == Status.REJECTED}
    assert set(rejected) == smtp_server.faults.reject
    assert all(r.hard_bounce and r.code == 550 and "5.1.1" in r.text for r in rejected.values())
    assert len(smtp_server.received) == 8
    assert smtp_server.faults.reject.isdisjoint(m.rcpt_tos[0] for m in smtp_server.received)


def test_drop_during_data_is_unknown_and_the_batch_goes_on(smtp_server, settings, outgoing):
    smtp_server.faults.drop_during_data = {"lezer0004@example.org"}
    messages = [outgoing(address, n) for n, address in enumerate(_addresses(10))]
    with open_transport(smtp_server.url, settings, env=smtp_server.env) as transport:
        results = transport.send_batch(messages)
    statuses = {m.rcpt_to: r.status for m, r in zip(messages, results)}
    assert statuses.pop("lezer0004@example.org") == Status.UNKNOWN
    assert set(statuses.values()) == {Status.SENT}
    received = sorted(mail.rcpt_tos[0] for mail in smtp_server.received)
    assert received == sorted(statuses)


def test_a_connection_closed_before_mail_from_is_reopened_transparently(smtp_server, settings, outgoing):
    with open_transport(smtp_server.url, settings, env=smtp_server.env) as transport:
        assert transport.send_batch([outgoing("a@example.org", 1)])[0].status == Status.SENT
        transport._smtp.sock.shutdown(socket.SHUT_RDWR)  # as a server's idle timeout would
        result = transport.send_batch([outgoing("b@example.org", 2)])[0]
    assert result.status == Status.SENT
    assert [mail.rcpt_tos[0] for mail in smtp_server.received] == ["a@example.org", "b@example.org"]


def test_wrong_password_stops_with_a_clear_error(smtp_server, settings):
    with pytest.raises(TransportError) as caught:
        open_transport(smtp_server.url, settings, env={"POSTBODE_SMTP_PASSWORD": "not-it-4711"}).open()
    assert "login refused" in str(caught.value) and "POSTBODE_SMTP_PASSWORD" in str(caught.value)
    assert "not-it-4711" not in str(caught.value)
    assert smtp_server.received == []


def test_an_unknown_certificate_is_refused_not_ignored(smtp_server, settings):
    url = smtp_server.url.split("?")[0] + "?tls=starttls"
    with pytest.raises(TransportError, match="certificate cannot be verified.*cafile"):
        open_transport(url, settings, env=smtp_server.env).open()


def test_a_closed_port_fails_at_open_but_is_a_retry_once_sending(smtp_server, settings, outgoing):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"smtp://127.0.0.1:{port}?tls=none&timeout=5"
    with pytest.raises(TransportError, match="cannot reach the SMTP server"):
        open_transport(url, settings, env={}).open()
    transport = open_transport(url, settings, env={})
    results = transport.send_batch([outgoing("a@example.org", 1), outgoing("b@example.org", 2)])
    assert [r.status for r in results] == [Status.RETRY, Status.RETRY]


def test_parallel_transports_are_parallel_connections(smtp_server, settings, outgoing):
    messages = [outgoing(address, n) for n, address in enumerate(_addresses(120))]
    results: dict[int, list] = {}

    def worker(part: int) -> None:
        with open_transport(smtp_server.url, settings, env=smtp_server.env) as transport:
            results[part] = transport.send_batch(messages[part::3])

    threads = [threading.Thread(target=worker, args=(part,)) for part in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(r) for r in results.values()) == 120
    assert all(r.status == Status.SENT for part in results.values() for r in part)
    assert sorted(mail.rcpt_tos[0] for mail in smtp_server.received) == _addresses(120)


def test_smtputf8_address_is_sent_when_the_server_offers_it(smtp_server, settings, outgoing):
    with open_transport(smtp_server.url, settings, env=smtp_server.env) as transport:
        result = transport.send_batch([outgoing("jürgen@example.org", 1)])[0]
    assert result.status == Status.SENT
    assert smtp_server.received[0].rcpt_tos == ["jürgen@example.org"]


@pytest.mark.parametrize("code, reply, stage, hard", [
    (550, "5.1.1 No such user", "RCPT TO", True),
    (553, "5.1.3 Bad address syntax", "RCPT TO", True),
    (550, "5.7.1 Message refused as spam", "RCPT TO", False),
    (554, "5.7.1 Content rejected", "end of DATA", False),
    (550, "Mailbox unavailable", "RCPT TO", True),
    (550, "Mailbox unavailable", "end of DATA", False),
    (552, "Mailbox full", "RCPT TO", False),
])
def test_hard_bounce_rule(code, reply, stage, hard):
    assert is_hard_bounce(code, reply, stage) is hard


def test_messages_from_the_real_builder_arrive_intact(smtp_server, settings, newsletter_messages):
    messages = newsletter_messages(5, "nl") + newsletter_messages(5, "en", start=5)
    with open_transport(smtp_server.url, settings, env=smtp_server.env) as transport:
        results = transport.send_batch(messages)
    assert [r.status for r in results] == [Status.SENT] * 10
    received = {mail.rcpt_tos[0]: mail.message for mail in smtp_server.received}
    for message in messages:
        mail = received[message.rcpt_to]
        assert mail["Message-ID"] == message.message_id
        assert mail["Content-Language"] == message.recipient.locale
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = mail.get_body(("html",)).get_content()
        assert f"Beste Lezer &amp; Co {message.recipient.subscriber_id}," in html
        assert mail.get_body(("plain",)).get_content().replace("\r\n", "\n") == message.text.replace("\r\n", "\n")


def test_local_relay_without_tls_or_login_and_without_smtputf8(settings, outgoing):
    from aiosmtpd.controller import Controller

    from fixtures.smtp import RecordingHandler, free_port

    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=False)
    controller.start()
    try:
        url = f"smtp://127.0.0.1:{controller.port}?tls=none"
        with open_transport(url, settings, env={}) as transport:
            results = transport.send_batch([outgoing("jürgen@example.org", 1), outgoing("anna@example.org", 2)])
    finally:
        controller.stop()
    assert results[0].status == Status.REJECTED and "SMTPUTF8" in results[0].text
    assert not results[0].hard_bounce
    assert results[1].status == Status.SENT
    assert [mail.rcpt_tos for mail in handler.received] == [["anna@example.org"]]


def test_a_421_reconnects_once_then_leaves_the_message_for_a_retry(smtp_server, settings, outgoing):
    handler = smtp_server.handler
    recorded = handler.handle_RCPT
    closing_for = {"b@example.org": 1, "c@example.org": 99}   # 421 this many times

    async def closing_rcpt(server, session, envelope, address, rcpt_options):
        if closing_for.get(address, 0) > 0:
            closing_for[address] -= 1
            with handler.lock:
                handler.answers.append((address, "421"))
            return "421 4.3.2 Service shutting down, try again"
        return await recorded(server, session, envelope, address, rcpt_options)

    handler.handle_RCPT = closing_rcpt
    messages = [outgoing(address, n) for n, address in
                enumerate(["a@example.org", "b@example.org", "c@example.org", "d@example.org"])]
    with open_transport(smtp_server.url, settings, env=smtp_server.env) as transport:
        results = transport.send_batch(messages)
    assert [str(r.status) for r in results] == ["sent", "sent", "retry", "sent"]
    assert results[2].code == 421 and "connection lost before the message was sent" in results[2].text
    assert [mail.rcpt_tos[0] for mail in smtp_server.received] == ["a@example.org", "b@example.org",
                                                                   "d@example.org"]
    assert [a for a, reply in handler.answers if reply == "421"] == ["b@example.org"] + ["c@example.org"] * 2


# -- PIPELINING (RFC 2920) and the bytes on the wire ----------------------------------------

DOTTED_TEXT = ".first line starts with a dot\n..two dots\nmiddle\n.\nlast line\n"


def test_a_relay_with_or_without_pipelining_gets_every_mail_intact(smtp_relay, settings, outgoing):
    messages = [outgoing(address, n, text=DOTTED_TEXT) for n, address in enumerate(_addresses(30))]
    with open_transport(smtp_relay.url, settings, env={}) as transport:
        connection = transport._smtp
        results = transport.send_batch(messages)
        assert transport._smtp is connection
    assert [r.status for r in results] == [Status.SENT] * 30
    # Pipelined: DATA had arrived with RCPT TO. Without PIPELINING, never before its reply.
    assert smtp_relay.handler.data_was_waiting == [smtp_relay.handler.pipelining] * 30
    # With CHUNKING the message went with its envelope in BDAT, else after DATA.
    assert {mail.chunked for mail in smtp_relay.received} == {smtp_relay.handler.chunking}
    received = {mail.rcpt_tos[0]: mail for mail in smtp_relay.received}
    for message in messages:
        mail = received[message.rcpt_to]
        assert mail.raw == message.as_bytes()      # dot-stuffing undone exactly by the server
        assert mail.message.get_body(("plain",)).get_content().replace("\r\n", "\n") == DOTTED_TEXT


def test_a_5xx_to_one_rcpt_rejects_only_that_message(smtp_relay, settings, outgoing):
    smtp_relay.faults.reject = {"lezer0002@example.org"}
    messages = [outgoing(address, n) for n, address in enumerate(_addresses(5))]
    with open_transport(smtp_relay.url, settings, env={}) as transport:
        connection = transport._smtp
        results = transport.send_batch(messages)
        assert transport._smtp is connection        # the refusal did not cost the connection
    assert [str(r.status) for r in results] == ["sent", "sent", "rejected", "sent", "sent"]
    assert results[2].code == 550 and results[2].hard_bounce and results[2].text.startswith("RCPT TO")
    assert sorted(m.rcpt_tos[0] for m in smtp_relay.received) == [
        a for a in _addresses(5) if a != "lezer0002@example.org"]


def test_a_refused_mail_from_in_a_pipelined_group_rejects_that_message_only(smtp_relay, settings,
                                                                             outgoing):
    async def refuse_one_sender(server, session, envelope, address, mail_options):
        if address == "blocked@example.org":
            return "553 5.7.1 Sender not allowed"
        envelope.mail_from = address
        return "250 OK"

    smtp_relay.handler.handle_MAIL = refuse_one_sender
    messages = [outgoing(a, n) for n, a in enumerate(_addresses(3))]
    messages[1].mail_from = "blocked@example.org"
    with open_transport(smtp_relay.url, settings, env={}) as transport:
        results = transport.send_batch(messages)
    assert [str(r.status) for r in results] == ["sent", "rejected", "sent"]
    assert results[1].text.startswith("MAIL FROM: 553") and not results[1].hard_bounce
    assert [m.rcpt_tos[0] for m in smtp_relay.received] == [_addresses(3)[0], _addresses(3)[2]]


def test_real_builder_bytes_go_out_unchanged(smtp_relay, settings, newsletter_messages):
    messages = newsletter_messages(4, "nl") + newsletter_messages(4, "ar", start=4)
    with open_transport(smtp_relay.url, settings, env={}) as transport:
        results = transport.send_batch(messages)
    assert [r.status for r in results] == [Status.SENT] * 8
    received = {mail.rcpt_tos[0]: mail.raw for mail in smtp_relay.received}
    assert all(received[m.rcpt_to] == m.as_bytes() for m in messages)


@pytest.mark.parametrize("data, wire", [
    (b"a\r\n.b\r\n", b"a\r\n..b\r\n.\r\n"),
    (b".a\r\nb", b"..a\r\nb\r\n.\r\n"),
    (b"a\r\n..\r\n.\r\n", b"a\r\n...\r\n..\r\n.\r\n"),
    (b"no dot.\r\n", b"no dot.\r\n.\r\n"),
])
def test_dot_stuffing(data, wire):
    assert _stuffed(data) == wire


def test_dot_stuffing_in_pieces_is_dot_stuffing_of_the_whole_however_it_is_cut():
    rng = random.Random(2920)
    for _ in range(2000):
        data = b"".join(rng.choice([b"a", b".", b"\r\n", b"\r", b"\n", b".."])
                        for _ in range(rng.randrange(0, 12)))
        cuts = sorted(rng.sample(range(len(data) + 1), k=min(len(data) + 1, rng.randrange(0, 4))))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
        assert dot_stuffed(pieces) == dot_stuffed([data], keep=False), (data, pieces)
    assert dot_stuffed([b"x\r\n", b".y\r\n"]) == b"x\r\n..y\r\n.\r\n"
    assert dot_stuffed([b"x\r", b"\n.y"]) == b"x\r\n..y\r\n.\r\n"


def test_a_built_mail_starts_no_line_with_a_dot_so_its_data_needs_no_stuffing(settings):
    """Dots at the start of the variant's lines and of a value's are written =2E in QP."""
    from email import message_from_bytes, policy

    from postbode import message
    from postbode.audience import Recipient
    from postbode.render import Rendered

    filler = "Een regel tekst over de resultaten van 2018.\n" * 40
    text = ".Begin\n__PB_GREETING__\n.midden\n..twee\n.\n" + filler + ".eind __PB_UNSUBSCRIBE_URL__\n"
    html = (f"<html><body><p>__PB_GREETING__</p><pre>\n.regel\n{filler}</pre>"
            '<a href="__PB_UNSUBSCRIBE_URL__">afmelden</a></body></html>')
    rendered = Rendered(newsletter_id="2018-07-resultaten", locale="nl", view=None, subject="Punt",
                        preheader="", html=html, text=text, lang="nl", direction="ltr",
                        greetings={"informal": "__PB_NAME__", "informal_anonymous": ".lezer"})
    settings = dataclasses.replace(settings, secret_key="stuffing-test-key-0123456789")
    variant = message.prepare(rendered, settings)
    for n, name in enumerate([".Punt", "Lotte", None, "..twee punten"]):
        mail = message.build(variant, Recipient(n, f"lezer{n}@example.org", name, "nl", "informal",
                                                None, "everyone"), "campaign-1", settings)
        raw = mail.as_bytes()
        assert b"\n." not in raw and _stuffed(raw) == raw + b".\r\n" == mail.smtp_data()
        parsed = message_from_bytes(raw, policy=policy.SMTP)
        plain, rich = (part.get_content().replace("\r\n", "\n") for part in parsed.iter_parts())
        assert plain == mail.text and ".midden\n..twee\n.\n" in plain
        assert rich == mail.html


def test_an_address_with_a_line_break_is_refused_before_any_command(smtp_relay, settings, outgoing):
    message = outgoing("a@example.org", 1)
    message.rcpt_to = "a@example.org>\r\nRCPT TO:<b@example.org"
    with open_transport(smtp_relay.url, settings, env={}) as transport:
        result = transport.send_batch([message])[0]
    assert result.status == Status.REJECTED and "line break" in result.text
    assert smtp_relay.handler.answers == [] and smtp_relay.received == []
