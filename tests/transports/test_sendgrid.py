"""SendGrid specifics: what each recipient gets once SendGrid fills in the substitutions."""
from __future__ import annotations

import json

import pytest
from werkzeug import Response

from postbode.errors import TransportError

from postbode.transports import Status, open_transport

from fixtures.providers import FakeSendGrid


def _filled(body: dict, person: dict) -> tuple[str, str]:
    """The text and HTML one personalization receives, substituted as SendGrid does."""
    parts = []
    for content in body["content"]:
        value = content["value"]
        for tag, replacement in person["substitutions"].items():
            value = value.replace(tag, replacement)
        parts.append(value)
    return parts[0], parts[1]


def test_each_recipient_gets_exactly_the_mail_postbode_built(settings, httpserver,
                                                             newsletter_messages):
    fake = FakeSendGrid(httpserver).install()
    bodies = fake.bodies
    messages = newsletter_messages(3) + newsletter_messages(2, locale="en", start=3)
    with open_transport("sendgrid://", settings, env=fake.env()) as transport:
        results = transport.send_batch(messages)
    assert fake.problems == []
    assert [r.status for r in results] == [Status.SENT] * 5
    assert len(bodies) == 2                         # one call per variant
    people = [(body, person) for body in bodies for person in body["personalizations"]]
    by_address = {person["to"][0]["email"]: (body, person) for body, person in people}
    for message in messages:
        body, person = by_address[message.rcpt_to]
        assert _filled(body, person) == (message.text, message.html)
        assert person["headers"]["Message-ID"] == message.message_id
        assert person["custom_args"] == {"postbode_message_id": message.message_id}
        assert person["to"][0]["name"] == message.recipient.name
    assert bodies[0]["tracking_settings"]["click_tracking"]["enable"] is False
    assert bodies[0]["reply_to"] == {"email": "info@example.org"}


def test_a_key_without_mail_send_is_refused_before_sending(settings, httpserver,
                                                          newsletter_messages):
    fake = FakeSendGrid(httpserver)
    httpserver.expect_request("/v3/scopes").respond_with_response(
        Response(json.dumps({"scopes": ["stats.read"]}), content_type="application/json"))
    fake.install()
    with pytest.raises(TransportError, match="mail.send permission"):
        with open_transport("sendgrid://", settings, env=fake.env()):
            pass
    assert fake.send_calls == []
