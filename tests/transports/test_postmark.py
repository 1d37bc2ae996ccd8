"""Postmark transport against pytest-httpserver speaking the documented /email/batch API."""
from __future__ import annotations

import email.utils
import json
import time

import pytest
from werkzeug import Request, Response

from postbode.errors import TransportError
from postbode.transports import Status, open_transport

from fixtures.providers import answer_key_check
from fixtures.smtp import free_port

PATH = "/email/batch"
SERVER_PATH = "/server"          # the key check at open: GET the token's server
TOKEN = "server-token-test-0000"


def _transport(settings, httpserver, **query):
    answer_key_check(httpserver, SERVER_PATH, {"ID": 1, "Name": "Nieuwsbrief"})
    options = "&".join(f"{k}={v}" for k, v in query.items())
    env = {"POSTBODE_POSTMARK_TOKEN": TOKEN,
           "POSTBODE_POSTMARK_API_URL": httpserver.url_for("/").rstrip("/")}
    return open_transport(f"postmark://?{options}".rstrip("?"), settings, env=env)


def _answer(batch: list, codes: dict[int, tuple[int, str]] | None = None) -> list:
    """Postmark's answer: one entry per message, in order."""
    answer = []
    for index, message in enumerate(batch):
        code, text = (codes or {}).get(index, (0, "OK"))
        entry = {"ErrorCode": code, "Message": text, "To": message["To"]}
        if code == 0:
            entry.update(MessageID=f"pm-{message['To'].split('<')[-1].rstrip('>')}",
                         SubmittedAt="2018-07-01T10:00:00Z")
        answer.append(entry)
    return answer


def _recording(calls: list, codes: dict[int, tuple[int, str]] | None = None):
    def handle(request: Request) -> Response:
        batch = json.loads(request.get_data())
        calls.append({"headers": dict(request.headers), "batch": batch})
        return Response(json.dumps(_answer(batch, codes)), content_type="application/json")
    return handle


def test_2500_messages_take_5_calls_with_the_documented_body(settings, httpserver, newsletter_messages):
    calls: list = []
    httpserver.expect_request(PATH, method="POST").respond_with_handler(_recording(calls))
    messages = newsletter_messages(2500)
    with _transport(settings, httpserver) as transport:
        results = []
        for start in range(0, 2500, transport.max_batch):
            results += transport.send_batch(messages[start:start + transport.max_batch])
    assert len(calls) == 5
    assert [len(call["batch"]) for call in calls] == [500] * 5
    headers = calls[0]["headers"]
    assert headers["X-Postmark-Server-Token"] == TOKEN
    assert headers["Accept"] == "application/json"
    assert headers["Content-Type"] == "application/json"
    assert [r.status for r in results] == [Status.SENT] * 2500
    assert [r.message_id for r in results] == [m.message_id for m in messages]
    assert results[7].provider_id == "pm-lezer00007@example.org"

    first, sent = messages[0], calls[0]["batch"][0]
    own = dict(first.headers)
    assert sent["From"] == own["From"] and sent["To"] == own["To"]
    assert sent["Subject"] == first.subject
    assert sent["HtmlBody"] == first.html and sent["TextBody"] == first.text
    assert sent["ReplyTo"] == "info@example.org"
    assert sent["MessageStream"] == "broadcast"
    extra = {h["Name"]: h["Value"] for h in sent["Headers"]}
    assert extra["Message-ID"] == first.message_id
    assert extra["List-Unsubscribe"] == own["List-Unsubscribe"]
    assert extra["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert not {"From", "To", "Subject", "Reply-To"} & set(extra)


def test_each_error_code_is_mapped_to_its_own_recipient(settings, httpserver, newsletter_messages):
    codes = {1: (406, "You tried to send to a recipient that has been marked as inactive."),
             3: (300, "Invalid 'To' address"),
             4: (405, "Not allowed to send: account has run out of credits")}
    httpserver.expect_request(PATH, method="POST").respond_with_handler(_recording([], codes))
    messages = newsletter_messages(6)
    with _transport(settings, httpserver) as transport:
        results = transport.send_batch(messages)
    outcome = [(r.message_id, r.status, r.code, r.hard_bounce) for r in results]
    assert outcome == [
        (messages[0].message_id, Status.SENT, 0, False),
        (messages[1].message_id, Status.REJECTED, 406, True),
        (messages[2].message_id, Status.SENT, 0, False),
        (messages[3].message_id, Status.REJECTED, 300, False),
        (messages[4].message_id, Status.RETRY, 405, False),
        (messages[5].message_id, Status.SENT, 0, False),
    ]
    assert "inactive" in results[1].text
    assert results[2].provider_id == "pm-lezer00002@example.org"


def test_429_with_an_http_date_then_success(settings, httpserver, newsletter_messages):
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        {"ErrorCode": 429, "Message": "Rate limit exceeded"}, status=429, headers={"Retry-After": later})
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_handler(_recording([]))
    messages = newsletter_messages(3)
    with _transport(settings, httpserver) as transport:
        first = transport.send_batch(messages)
        second = transport.send_batch(messages)
    assert {(r.status, r.code) for r in first} == {(Status.RETRY, 429)}
    assert all(60 < r.retry_after <= 120 for r in first)
    assert [r.status for r in second] == [Status.SENT] * 3


def test_500_is_retry(settings, httpserver, newsletter_messages):
    httpserver.expect_request(PATH, method="POST").respond_with_data("Internal Server Error", status=500)
    with _transport(settings, httpserver) as transport:
        results = transport.send_batch(newsletter_messages(2))
    assert {(r.status, r.code, r.retry_after) for r in results} == {(Status.RETRY, 500, None)}


def test_a_refused_batch_rejects_bad_messages_but_stops_on_account_problems(settings, httpserver,
                                                                          newsletter_messages):
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        {"ErrorCode": 300, "Message": "Invalid email request"}, status=422)
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(
        {"ErrorCode": 400, "Message": "Sender signature not defined for From address."}, status=422)
    messages = newsletter_messages(2)
    with _transport(settings, httpserver) as transport:
        refused = transport.send_batch(messages)
        with pytest.raises(TransportError, match="Sender signature not defined"):
            transport.send_batch(messages)
    assert {(r.status, r.code) for r in refused} == {(Status.REJECTED, 422)}


def test_a_wrong_token_stops_the_campaign(settings, httpserver, newsletter_messages):
    httpserver.expect_request(PATH, method="POST").respond_with_json(
        {"ErrorCode": 10, "Message": "The Server Token you provided in the X-Postmark-Server-Token "
                                     "request header was invalid."}, status=401)
    with pytest.raises(TransportError, match="POSTBODE_POSTMARK_TOKEN"):
        with _transport(settings, httpserver) as transport:
            transport.send_batch(newsletter_messages(1))


def test_no_answer_after_the_request_was_sent_is_unknown(settings, httpserver, newsletter_messages):
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response("[]", content_type="application/json")
    httpserver.expect_request(PATH, method="POST").respond_with_handler(slow)
    with _transport(settings, httpserver, timeout=0.3) as transport:
        results = transport.send_batch(newsletter_messages(3))
    assert [r.status for r in results] == [Status.UNKNOWN] * 3


def test_an_answer_that_does_not_match_the_batch_is_unknown(settings, httpserver, newsletter_messages):
    httpserver.expect_request(PATH, method="POST").respond_with_json([{"ErrorCode": 0}])
    with _transport(settings, httpserver) as transport:
        results = transport.send_batch(newsletter_messages(2))
    assert [r.status for r in results] == [Status.UNKNOWN] * 2


def test_a_closed_port_fails_at_open_and_a_server_gone_later_is_a_retry(settings, httpserver,
                                                                          newsletter_messages):
    port = free_port()          # nothing listens there
    env = {"POSTBODE_POSTMARK_TOKEN": TOKEN}
    with pytest.raises(TransportError, match="cannot reach Postmark to check the key"):
        open_transport(f"postmark://?api=http://127.0.0.1:{port}", settings, env=env).open()
    with _transport(settings, httpserver) as transport:
        transport.endpoint = f"http://127.0.0.1:{port}{PATH}"
        results = transport.send_batch(newsletter_messages(2))
    assert [r.status for r in results] == [Status.RETRY] * 2


def test_a_wrong_token_is_refused_at_open_before_anything_is_sent(settings, httpserver):
    httpserver.expect_request(SERVER_PATH, method="GET").respond_with_json(
        {"ErrorCode": 10, "Message": "The Server Token you provided in the X-Postmark-Server-Token "
                                     "request header was invalid."}, status=401)
    env = {"POSTBODE_POSTMARK_TOKEN": "wrong", "POSTBODE_POSTMARK_API_URL": httpserver.url_for("/").rstrip("/")}
    with pytest.raises(TransportError, match="refused the key.*POSTBODE_POSTMARK_TOKEN"):
        open_transport("postmark://", settings, env=env).open()
    ((request, _response),) = httpserver.log
    assert request.path == SERVER_PATH and request.headers["X-Postmark-Server-Token"] == "wrong"

