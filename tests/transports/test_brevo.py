"""Brevo specifics: each message whole, with its own headers, in a call of its own."""
from __future__ import annotations

from postbode.transports import Status, open_transport

from fixtures.providers import FakeBrevo


def test_each_message_goes_whole_with_its_headers(settings, httpserver, newsletter_messages):
    fake = FakeBrevo(httpserver).install()
    bodies = fake.bodies
    messages = newsletter_messages(2)
    with open_transport("brevo://", settings, env=fake.env()) as transport:
        results = transport.send_batch(messages)
    assert fake.problems == []
    assert [r.status for r in results] == [Status.SENT] * 2
    assert results[0].provider_id.startswith("<brevo-")
    for message, body in zip(messages, bodies):
        own = dict(message.headers)
        assert body["to"] == [{"email": message.rcpt_to, "name": message.recipient.name}]
        assert body["htmlContent"] == message.html and body["textContent"] == message.text
        assert body["headers"]["Message-ID"] == message.message_id
        assert body["headers"]["List-Unsubscribe"] == own["List-Unsubscribe"]
        assert body["headers"]["Feedback-ID"] == own["Feedback-ID"]
        assert body["replyTo"] == {"email": "info@example.org"}
        assert body["sender"] == {"email": "nieuwsbrief@example.org", "name": "Coalitie"}
