"""Mailjet specifics: one status per message, a 400 that still lists each message."""
from __future__ import annotations

import json

from werkzeug import Request, Response

from postbode.transports import Status, open_transport

from fixtures.providers import FakeMailjet


def test_each_error_goes_to_its_own_message(settings, httpserver, newsletter_messages):
    fake = FakeMailjet(httpserver)

    def answer(request: Request) -> Response:
        messages = request.get_json()["Messages"]
        entries = [{"Status": "success", "CustomID": m["CustomID"],
                    "To": [{"Email": m["To"][0]["Email"], "MessageID": 70 + i}]}
                   for i, m in enumerate(messages)]
        entries[1] = {"Status": "error", "Errors": [{"ErrorCode": "mj-0013", "StatusCode": 400,
                                                     "ErrorMessage": "\"x\" is an invalid email"}]}
        return Response(json.dumps({"Messages": entries}), status=400,
                        content_type="application/json")

    fake.accepted = lambda request, recipients: answer(request)
    fake.install()
    messages = newsletter_messages(3)
    with open_transport("mailjet://", settings, env=fake.env()) as transport:
        results = transport.send_batch(messages)
    assert [(r.status, r.provider_id) for r in results] == [
        (Status.SENT, "70"), (Status.REJECTED, None), (Status.SENT, "72")]
    assert "mj-0013" in results[1].text


def test_the_message_carries_its_headers_and_custom_id(settings, httpserver, newsletter_messages):
    fake = FakeMailjet(httpserver).install()
    bodies = fake.bodies
    message = newsletter_messages(1)[0]
    with open_transport("mailjet://", settings, env=fake.env()) as transport:
        (result,) = transport.send_batch([message])
    assert fake.problems == [] and result.status == Status.SENT
    sent = bodies[0]["Messages"][0]
    assert sent["CustomID"] == message.message_id
    assert sent["HTMLPart"] == message.html and sent["TextPart"] == message.text
    assert sent["Headers"]["List-Unsubscribe"] == dict(message.headers)["List-Unsubscribe"]
    assert sent["ReplyTo"] == {"Email": "info@example.org"}
    assert "Reply-To" not in sent["Headers"] and "To" not in sent["Headers"]
