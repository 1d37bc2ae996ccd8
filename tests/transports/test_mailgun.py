"""Mailgun transport against pytest-httpserver speaking the documented messages API."""
from __future__ import annotations

import json
import time

import pytest
from werkzeug import Request, Response

from postbode.errors import TransportError
from postbode.transports import Status, open_transport

from fixtures.providers import answer_key_check
from fixtures.smtp import free_port

PATH = "/v3/mg.example.org/messages"
DOMAIN_PATH = "/v3/domains/mg.example.org"     # the key check at open: GET the sending domain
KEY = "key-test-0000"


def _transport(settings, httpserver, **query):
    answer_key_check(httpserver, DOMAIN_PATH, {"domain": {"name": "mg.example.org", "state": "active"}})
    options = "&".join(f"{k}={v}" for k, v in query.items())
    env = {"POSTBODE_MAILGUN_API_KEY": KEY,
           "POSTBODE_MAILGUN_API_URL": httpserver.url_for("/").rstrip("/")}
    return open_transport(f"mailgun://mg.example.org?region=eu&{options}".rstrip("&?"), settings, env=env)


def _recording(calls: list, status: int = 200, body: dict | None = None, headers: dict | None = None):
    """A handler that keeps each call's form fields and answers as told."""
    def handle(request: Request) -> Response:
        calls.append({"auth": (request.authorization.username, request.authorization.password),
                      "form": request.form.to_dict(flat=False)})
        answer = body or {"id": f"<call{len(calls)}@mg.example.org>", "message": "Queued. Thank you."}
        return Response(json.dumps(answer), status=status, headers=headers,
                        content_type="application/json")
    return handle


def test_2500_recipients_of_one_variant_take_3_calls(settings, httpserver, newsletter_messages):
    calls: list = []
    httpserver.expect_request(PATH, method="POST").respond_with_handler(_recording(calls))
    messages = newsletter_messages(2500)
    with _transport(settings, httpserver) as transport:
        results = transport.send_batch(messages[:1000]) + transport.send_batch(messages[1000:2000]) \
            + transport.send_batch(messages[2000:])
    assert len(calls) == 3
    assert [len(call["form"]["to"]) for call in calls] == [1000, 1000, 500]
    assert all(call["auth"] == ("api", KEY) for call in calls)
    assert [r.status for r in results] == [Status.SENT] * 2500
    assert results[0].provider_id == "<call1@mg.example.org>"
    assert results[-1].provider_id == "<call3@mg.example.org>"
    assert [r.message_id for r in results] == [m.message_id for m in messages]

    form = calls[0]["form"]
    variables = json.loads(form["recipient-variables"][0])
    assert list(variables) == [m.rcpt_to for m in messages[:1000]]
    assert form["to"] == [dict(m.headers)["To"] for m in messages[:1000]]
    assert form["subject"] == ["Resultaten 2018 (nl)"]
    assert form["from"] == [dict(messages[0].headers)["From"]]
    html, text = form["html"][0], form["text"][0]
    assert "%recipient.pb_greeting_html%" in html and "__PB_" not in html
    assert "%recipient.pb_greeting_text%" in text and "__PB_" not in text
    assert form["h:List-Unsubscribe-Post"] == ["List-Unsubscribe=One-Click"]
    unsubscribe_key = form["h:List-Unsubscribe"][0].strip("%").split(".", 1)[1]
    message_id_key = form["h:Message-ID"][0].strip("%").split(".", 1)[1]
    for message in messages[:1000]:
        mine = variables[message.rcpt_to]
        headers = dict(message.headers)
        assert mine[unsubscribe_key] == headers["List-Unsubscribe"]
        assert mine[message_id_key] == message.message_id
        assert mine["pb_greeting_text"] == message.values["__PB_GREETING__"]
        # filling the template the way Mailgun does gives exactly the personal mail
        filled = html
        for name, value in mine.items():
            filled = filled.replace(f"%recipient.{name}%", value)
        assert filled == message.html


def test_two_variants_go_in_separate_calls_and_results_keep_their_order(settings, httpserver,
                                                                      newsletter_messages):
    calls: list = []
    httpserver.expect_request(PATH, method="POST").respond_with_handler(_recording(calls))
    dutch, english = newsletter_messages(3, "nl"), newsletter_messages(3, "en", start=3)
    mixed = [dutch[0], english[0], dutch[1], english[1], dutch[2], english[2]]
    with _transport(settings, httpserver) as transport:
        results = transport.send_batch(mixed)
    assert len(calls) == 2
    assert {call["form"]["subject"][0] for call in calls} == {"Resultaten 2018 (nl)", "Resultaten 2018 (en)"}
    assert [r.message_id for r in results] == [m.message_id for m in mixed]
    nl_call = 1 if calls[0]["form"]["subject"][0].endswith("(nl)") else 2
    assert results[0].provider_id == f"<call{nl_call}@mg.example.org>"


def test_429_with_retry_after_then_success(settings, httpserver, newsletter_messages):
    calls: list = []
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_handler(
        _recording(calls, 429, {"message": "slow down"}, {"Retry-After": "7"}))
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_handler(_recording(calls))
    messages = newsletter_messages(4)
    with _transport(settings, httpserver) as transport:
        first = transport.send_batch(messages)
        second = transport.send_batch(messages)
    assert [(r.status, r.code, r.retry_after) for r in first] == [(Status.RETRY, 429, 7.0)] * 4
    assert [r.status for r in second] == [Status.SENT] * 4
    assert len(calls) == 2


def test_500_is_retry_and_400_is_rejected(settings, httpserver, newsletter_messages):
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json({"message": "oops"}, status=500)
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        {"message": "'to' parameter is not a valid address"}, status=400)
    messages = newsletter_messages(2)
    with _transport(settings, httpserver) as transport:
        assert {r.status for r in transport.send_batch(messages)} == {Status.RETRY}
        refused = transport.send_batch(messages)
    assert {(r.status, r.code) for r in refused} == {(Status.REJECTED, 400)}
    assert "not a valid address" in refused[0].text


def test_a_wrong_key_stops_the_campaign(settings, httpserver, newsletter_messages):
    httpserver.expect_request(PATH, method="POST").respond_with_data("Forbidden", status=401)
    with pytest.raises(TransportError, match="POSTBODE_MAILGUN_API_KEY"):
        with _transport(settings, httpserver) as transport:
            transport.send_batch(newsletter_messages(1))


def test_no_answer_after_the_request_was_sent_is_unknown(settings, httpserver, newsletter_messages):
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response("{}", content_type="application/json")
    httpserver.expect_request(PATH, method="POST").respond_with_handler(slow)
    with _transport(settings, httpserver, timeout=0.3) as transport:
        results = transport.send_batch(newsletter_messages(3))
    assert [r.status for r in results] == [Status.UNKNOWN] * 3
    assert "may have gone out" in results[0].text


def test_a_closed_port_fails_at_open_and_a_server_gone_later_is_a_retry(settings, httpserver,
                                                                          newsletter_messages):
    port = free_port()          # nothing listens there
    env = {"POSTBODE_MAILGUN_API_KEY": KEY}
    with pytest.raises(TransportError, match="cannot reach Mailgun to check the key"):
        open_transport(f"mailgun://mg.example.org?api=http://127.0.0.1:{port}", settings, env=env).open()
    with _transport(settings, httpserver) as transport:
        transport.endpoint = f"http://127.0.0.1:{port}{PATH}"
        results = transport.send_batch(newsletter_messages(2))
    assert [r.status for r in results] == [Status.RETRY] * 2


def test_the_key_and_the_domain_are_checked_before_anything_is_sent(settings, httpserver):
    env = {"POSTBODE_MAILGUN_API_KEY": "key-wrong",
           "POSTBODE_MAILGUN_API_URL": httpserver.url_for("/").rstrip("/")}
    asked: list = []

    def domain(request: Request) -> Response:
        asked.append((request.authorization.username, request.authorization.password))
        if request.authorization.password != KEY:
            return Response("Forbidden", status=401)
        return Response(json.dumps({"message": "Domain not found"}), status=404,
                        content_type="application/json")

    httpserver.expect_request(DOMAIN_PATH, method="GET").respond_with_handler(domain)
    with pytest.raises(TransportError, match="refused the key.*POSTBODE_MAILGUN_API_KEY"):
        open_transport("mailgun://mg.example.org?region=eu", settings, env=env).open()
    with pytest.raises(TransportError, match="no sending domain mg.example.org.*region"):
        open_transport("mailgun://mg.example.org?region=eu", settings,
                       env={**env, "POSTBODE_MAILGUN_API_KEY": KEY}).open()
    assert asked == [("api", "key-wrong"), ("api", KEY)]
    assert [r.path for r, _ in httpserver.log] == [DOMAIN_PATH, DOMAIN_PATH]   # nothing sent


def test_a_message_without_its_variant_fails_loudly(settings, httpserver, outgoing):
    with pytest.raises(TransportError, match="Mailgun does not support"):
        with _transport(settings, httpserver) as transport:
            transport.send_batch([outgoing("lezer@example.org")])
