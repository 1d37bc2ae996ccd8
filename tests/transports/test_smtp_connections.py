"""Several SMTP connections driven in step by one worker (servers that offer PIPELINING)."""
from __future__ import annotations

import socket

from postbode.transports import Status, open_transport
from postbode.transports.smtp import SmtpConnections, SmtpTransport

from fixtures.smtp import free_port

DOTTED_TEXT = ".first line starts with a dot\n..two dots\n.\nlast line\n"


def _addresses(count: int) -> list[str]:
    return [f"lezer{n:04d}@example.org" for n in range(count)]


def _opened(server, settings, count: int) -> list:
    opened = [open_transport(server.url, settings, env=server.env) for _ in range(count)]
    for transport in opened:
        transport.open()
    return opened


def _peers(server) -> list[tuple]:
    """Record the connection (client address) each accepted mail came over."""
    handler, peers = server.handler, []
    received = handler.handle_DATA

    async def data(srv, session, envelope):
        peers.append(session.peer)
        return await received(srv, session, envelope)

    handler.handle_DATA = data
    return peers


def _send(workers: list, messages: list) -> list:
    worker = workers[0]
    return [r for start in range(0, len(messages), worker.max_batch)
            for r in worker.send_batch(messages[start:start + worker.max_batch])]


def test_a_pipelining_server_gets_one_worker_for_all_connections_else_one_each(smtp_relay, settings,
                                                                                outgoing):
    peers = _peers(smtp_relay)
    opened = _opened(smtp_relay, settings, 3)
    workers = SmtpTransport.per_worker(opened)
    messages = [outgoing(a, n, text=DOTTED_TEXT) for n, a in enumerate(_addresses(30))]
    try:
        if smtp_relay.handler.pipelining:
            assert len(workers) == 1 and isinstance(workers[0], SmtpConnections)
            assert workers[0].max_batch == 3
            results = _send(workers, messages)
        else:
            assert workers == opened
            results = [r for n, t in enumerate(opened) for r in t.send_batch(messages[n::3])]
            messages = [m for n in range(3) for m in messages[n::3]]
    finally:
        for worker in workers:
            worker.close()
    assert [r.status for r in results] == [Status.SENT] * 30
    assert [r.message_id for r in results] == [m.message_id for m in messages]
    assert sorted(peers.count(peer) for peer in set(peers)) == [10, 10, 10]   # each connection its share
    received = {mail.rcpt_tos[0]: mail for mail in smtp_relay.received}
    assert all(received[m.rcpt_to].raw == m.as_bytes() for m in messages)      # dot-stuffing undone


def test_a_refusal_or_a_drop_in_step_touches_only_its_own_message(smtp_server, settings, outgoing):
    smtp_server.faults.reject = {"lezer0001@example.org"}
    smtp_server.faults.drop_during_data = {"lezer0002@example.org"}
    (worker,) = SmtpTransport.per_worker(_opened(smtp_server, settings, 3))
    messages = [outgoing(a, n) for n, a in enumerate(_addresses(9))]
    with worker:
        results = _send([worker], messages)
    statuses = [str(r.status) for r in results]
    assert statuses == ["sent", "rejected", "unknown"] + ["sent"] * 6
    assert results[1].hard_bounce and results[1].text.startswith("RCPT TO: 550")
    assert "may have been delivered" in results[2].text
    # the dropped connection was opened again for the next batch
    assert sorted(m.rcpt_tos[0] for m in smtp_server.received) == [
        a for a in _addresses(9) if a not in ("lezer0001@example.org", "lezer0002@example.org")]


def test_a_connection_gone_before_its_envelope_sends_its_message_on_a_fresh_one(smtp_server, settings,
                                                                                 outgoing):
    opened = _opened(smtp_server, settings, 2)
    (worker,) = SmtpTransport.per_worker(opened)
    with worker:
        assert [r.status for r in worker.send_batch([outgoing("a@example.org", 1),
                                                     outgoing("b@example.org", 2)])] == [Status.SENT] * 2
        opened[1]._smtp.sock.shutdown(socket.SHUT_RDWR)     # as a server's idle timeout would
        results = worker.send_batch([outgoing("c@example.org", 3), outgoing("d@example.org", 4)])
    assert [r.status for r in results] == [Status.SENT, Status.SENT]
    assert sorted(m.rcpt_tos[0] for m in smtp_server.received) == [
        "a@example.org", "b@example.org", "c@example.org", "d@example.org"]


def test_a_server_gone_for_good_leaves_only_that_connections_message_for_a_retry(smtp_server, settings,
                                                                                  outgoing):
    opened = _opened(smtp_server, settings, 2)
    (worker,) = SmtpTransport.per_worker(opened)
    with worker:
        opened[0]._drop()
        opened[0].server = type(opened[0].server)(**{**vars(opened[0].server), "port": free_port()})
        results = worker.send_batch([outgoing("a@example.org", 1), outgoing("b@example.org", 2)])
    assert [str(r.status) for r in results] == ["retry", "sent"]
    assert "nothing was sent" in results[0].text
    assert [m.rcpt_tos[0] for m in smtp_server.received] == ["b@example.org"]
