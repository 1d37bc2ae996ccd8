"""Campaigns end to end against real servers: the outbox, aiosmtpd (STARTTLS + AUTH, implicit
TLS, injected faults), and pytest-httpserver speaking the Mailgun and Postmark APIs."""
from __future__ import annotations

import json
import re
import threading
from collections import Counter
from email import policy
from email.parser import BytesParser
from email.utils import parseaddr
from pathlib import Path

import pytest
from werkzeug import Response

from postbode import audience, campaign, journal, store, tokens
from postbode.campaign import pacing
from postbode.errors import CampaignError, CampaignPaused, PostbodeError
from postbode.i18n import load_translations

from conftest import SAMPLE

# state tests: once on a SQLite file, once on PostgreSQL (tests/fixtures/state.py)
pytestmark = pytest.mark.both_engines

FAST = campaign.Policy(concurrency=2, backoff_base=0.01, backoff_cap=0.05, max_wait=5)


def run(settings, url, **kw):
    kw.setdefault("policy", FAST)
    return campaign.run(settings, Path(SAMPLE), ["everyone"], transport=url, **kw)


def journal_rows(settings, campaign_id: str) -> dict[str, dict]:
    conn = store.connect(settings)
    try:
        return {r["email"]: dict(r) for r in journal.iter_rows(conn, campaign_id)}
    finally:
        conn.close()


def unsubscribe_email(settings, header: str) -> str:
    """The address the signed one-click unsubscribe URL in a List-Unsubscribe header is for."""
    url = re.search(r"<(https?://[^>]+)>", header).group(1)
    token = url.rstrip("/").rsplit("/", 1)[1]
    payload = tokens.verify(settings, "unsubscribe", token)
    assert payload["email"] is None  # the link names the subscriber's opaque key, not the address
    conn = store.connect(settings, migrate=False)
    try:
        return audience.email_for_key(conn, payload["subscriber_key"])
    finally:
        conn.close()


def isolated(text: str) -> str:
    """Text without the Unicode isolates that keep a name's direction in right-to-left text."""
    return text.replace("\u2068", "").replace("\u2069", "")


# ---------------------------------------------------------------- outbox

def test_outbox_campaign_writes_each_recipient_once_and_a_rerun_sends_nothing(send_settings,
                                                                              populate,
                                                                              state_conn):
    readers = populate(60)
    outcome = run(send_settings, "outbox://outbox")
    assert outcome.totals["sent"] == 60 and outcome.totals["unknown"] == 0
    files = list((send_settings.root / "outbox" / outcome.campaign_id).glob("*.eml"))
    assert len(files) == 60
    to = Counter(BytesParser(policy=policy.default).parsebytes(f.read_bytes())["To"].addresses[0]
                 .addr_spec for f in files)
    assert to == Counter(r.email for r in readers)
    again = run(send_settings, "outbox://outbox")
    assert again.campaign_id == outcome.campaign_id and again.totals["sent"] == 60
    assert len(list((send_settings.root / "outbox" / outcome.campaign_id).glob("*.eml"))) == 60
    conn = state_conn()
    assert journal.get_campaign(conn, outcome.campaign_id).status == "finished"
    assert all(r["attempts"] == 1 for r in journal.iter_rows(conn, outcome.campaign_id))


def test_every_variant_is_built_before_the_first_mail_leaves(send_settings, populate, state_conn):
    populate(10)
    template = send_settings.templates_dir / "email.html"
    template.write_text(template.read_text(encoding="utf-8") + "{{ no_such_value.field }}",
                        encoding="utf-8")
    with pytest.raises(PostbodeError):
        run(send_settings, "outbox://outbox")
    assert not list((send_settings.root / "outbox").rglob("*.eml"))
    conn = state_conn()
    assert journal.list_campaigns(conn) == []  # nothing half-begun is left behind


def test_a_changed_newsletter_is_not_resumed_but_can_start_a_new_campaign(send_settings,
                                                                          populate):
    populate(5)
    first = run(send_settings, "outbox://outbox")
    source = send_settings.root / SAMPLE
    source.write_text(source.read_text(encoding="utf-8").replace("2018", "2018 ", 1),
                      encoding="utf-8")
    with pytest.raises(CampaignError, match=rf"{SAMPLE}.*--new-campaign"):
        run(send_settings, "outbox://outbox")
    # those who had the earlier version are counted, and reached only with --again
    planned = campaign.plan(send_settings, Path(SAMPLE), ["everyone"], transport="outbox://outbox",
                            new_campaign=True)
    assert planned.total == 0 and planned.earlier_versions == (first.campaign_id,)
    second = run(send_settings, "outbox://outbox", new_campaign=True, again=True)
    assert second.campaign_id == first.campaign_id + "--2"
    assert second.totals["sent"] == 5


def test_dry_run_builds_every_message_and_writes_nothing(send_settings, populate, state_conn):
    populate(25)
    outcome = campaign.dry_run(send_settings, Path(SAMPLE), ["everyone"],
                               transport="outbox://outbox")
    assert outcome.built == 25 and outcome.bytes > 25 * 1000
    assert not (send_settings.root / "outbox").exists()
    conn = state_conn()
    assert journal.list_campaigns(conn) == []


def test_test_mails_go_once_per_variant_marked_and_unjournaled(send_settings, populate,
                                                               smtp_server, monkeypatch,
                                                               state_conn):
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", smtp_server.password)
    populate(20)
    outcome = campaign.send_test(send_settings, Path(SAMPLE), ["everyone"],
                                 ["proef@example.net"], transport=smtp_server.url)
    locales = {m.message["Content-Language"] for m in smtp_server.received}
    assert len(smtp_server.received) == outcome.built == 5 == len(locales)
    assert all(m.message["Subject"].startswith("[TEST ") for m in smtp_server.received)
    assert all(m.rcpt_tos == ["proef@example.net"] for m in smtp_server.received)
    conn = state_conn()
    assert journal.list_campaigns(conn) == []


def test_quota_pauses_cleanly_and_the_next_run_continues(send_settings, populate, state_conn):
    populate(40)
    policy = campaign.Policy(concurrency=2, hourly_quota=25)
    with pytest.raises(CampaignPaused, match="hourly quota of 25.*run the same command again"):
        run(send_settings, "outbox://outbox", policy=policy)
    conn = state_conn()
    cid = journal.list_campaigns(conn)[0].id
    assert journal.tally(conn, cid)["sent"] == 25
    assert journal.tally(conn, cid)["claimed"] == 0
    assert run(send_settings, "outbox://outbox").totals["sent"] == 40


def test_daily_quota_counts_mails_of_every_campaign_and_pauses(send_settings, populate,
                                                               state_conn):
    populate(40)
    policy = campaign.Policy(concurrency=2, hourly_quota=1000, daily_quota=15)
    with pytest.raises(CampaignPaused, match="daily quota of 15.*run the same command again"):
        run(send_settings, "outbox://outbox", policy=policy)
    conn = state_conn()
    first = journal.list_campaigns(conn)[0].id
    assert journal.tally(conn, first)["sent"] == 15 and journal.tally(conn, first)["claimed"] == 0
    # The mails of the first campaign count against a second one on the same day.
    with pytest.raises(CampaignPaused, match="daily quota of 15"):
        run(send_settings, "outbox://outbox", policy=policy, new_campaign=True)
    second = journal.list_campaigns(conn)
    assert sum(journal.tally(conn, c.id)["sent"] for c in second) == 15


def test_rate_spreads_the_campaign_in_batches_no_bigger_than_the_bucket(send_settings, populate,
                                                                      monkeypatch):
    """--rate on a batching transport: the outbox takes 500 a call, yet at 10/s a batch holds 10
    and 60 mails take 5 s beyond the first full bucket (time is virtual: waits advance a clock)."""
    from postbode.transports.outbox import OutboxTransport

    populate(60)
    clock, waits, batches = [0.0], [], []

    class VirtualTime(threading.Event):
        def wait(self, timeout=None):
            waits.append(timeout)
            clock[0] += timeout or 0
            return self.is_set()

    real_bucket, real_send = pacing.TokenBucket, OutboxTransport.send_batch
    monkeypatch.setattr(pacing, "TokenBucket", lambda rate: real_bucket(rate, clock=lambda: clock[0]))

    def counting_send(self, messages):
        batches.append(len(messages))
        return real_send(self, messages)

    monkeypatch.setattr(OutboxTransport, "send_batch", counting_send)
    outcome = run(send_settings, "outbox://outbox", policy=campaign.Policy(concurrency=1, rate=10),
                  stop=VirtualTime())
    assert outcome.totals["sent"] == 60
    assert sum(batches) == 60 and max(batches) == 10
    # (60 - 10) / 10 s for the mails, and at most one more bucket for the claim that finds nothing.
    assert 5.0 <= sum(waits) <= 6.0 + 1e-9, waits


# ---------------------------------------------------------------- SMTP

@pytest.mark.parametrize("server_fixture", ["smtp_server", "smtps_server"])
def test_smtp_campaign_delivers_one_personalised_mail_to_each_of_500(
        server_fixture, request, send_settings, populate, monkeypatch):
    server = request.getfixturevalue(server_fixture)
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", server.password)
    readers = {r.email: r for r in populate(500)}
    greetings = {}                  # locale → formality → the greeting its catalog gives
    for locale in {r.locale for r in readers.values()}:
        catalog = load_translations(locale, send_settings)
        greetings[locale] = {"formal": catalog.gettext("Geachte %(name)s,"),
                             "informal": catalog.gettext("Beste %(name)s,")}
    assert len({g["formal"] for g in greetings.values()}) == 4     # nl (and nl_BE), en, de, ar
    outcome = run(send_settings, server.url)
    assert outcome.totals["sent"] == 500
    assert len(server.received) == 500
    seen = set()
    for mail in server.received:
        msg = mail.message
        (rcpt,) = mail.rcpt_tos
        reader = readers[rcpt]
        assert msg["To"].addresses[0].addr_spec == rcpt
        assert msg["Content-Language"].replace("-", "_").lower() == reader.locale.lower()
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe_email(send_settings, msg["List-Unsubscribe"]) == rcpt
        assert msg.get_content_type() == "multipart/alternative" and not msg.defects
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert reader.name in text and reader.name in html
        assert greetings[reader.locale][reader.formality] % {"name": reader.name} in isolated(text)
        assert f'lang="{reader.locale.split("_")[0]}' in html
        seen.add(rcpt)
    assert seen == set(readers)
    again = run(send_settings, server.url)
    assert again.totals["sent"] == 500 and len(server.received) == 500


def test_random_451s_are_retried_until_everyone_has_exactly_one(send_settings, populate,
                                                                smtp_server, monkeypatch):
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", smtp_server.password)
    readers = populate(200)
    smtp_server.faults.random_451_rate = 0.1
    outcome = run(send_settings, smtp_server.url)
    assert outcome.totals["sent"] == 200 and outcome.totals.retried > 5
    assert Counter(m.rcpt_tos[0] for m in smtp_server.received) == Counter(r.email for r in readers)
    retried = [r for r in journal_rows(send_settings, outcome.campaign_id).values()
               if r["attempts"] > 1]
    assert retried and all(r["state"] == "sent" for r in retried)


def test_550_is_rejected_suppressed_and_not_retried(send_settings, populate, smtp_server,
                                                   monkeypatch, state_conn):
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", smtp_server.password)
    readers = populate(50)
    bad = {readers[3].email, readers[17].email}
    smtp_server.faults.reject.update(bad)
    outcome = run(send_settings, smtp_server.url)
    assert (outcome.totals["sent"], outcome.totals["rejected"]) == (48, 2)
    assert {m.rcpt_tos[0] for m in smtp_server.received} == {r.email for r in readers} - bad
    rows = journal_rows(send_settings, outcome.campaign_id)
    conn = state_conn()
    for address in bad:
        assert rows[address]["state"] == "rejected" and rows[address]["attempts"] == 1
        assert rows[address]["last_code"] == 550
        assert audience.is_suppressed(conn, address)
    assert [a for a, _ in smtp_server.handler.answers].count(readers[3].email) == 1


def test_a_drop_during_data_makes_that_mail_unknown_and_the_rest_continue(
        send_settings, populate, smtp_server, monkeypatch):
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", smtp_server.password)
    readers = populate(40)
    dropped = readers[10].email
    smtp_server.faults.drop_during_data.add(dropped)
    outcome = run(send_settings, smtp_server.url)
    assert (outcome.totals["sent"], outcome.totals["unknown"]) == (39, 1)
    assert journal_rows(send_settings, outcome.campaign_id)[dropped]["state"] == "unknown"
    # Resuming does not resend it; only --resend-unknown does.
    run(send_settings, smtp_server.url)
    assert dropped not in [a for a, _ in smtp_server.handler.answers[40:]]
    smtp_server.faults.drop_during_data.clear()
    again = run(send_settings, smtp_server.url, resend_unknown=True)
    assert again.totals["sent"] == 40
    assert [m.rcpt_tos[0] for m in smtp_server.received].count(dropped) == 1


def test_a_run_of_transient_failures_pauses_and_resumes(send_settings, populate, smtp_server,
                                                       monkeypatch):
    monkeypatch.setenv("POSTBODE_SMTP_PASSWORD", smtp_server.password)
    readers = populate(60)
    smtp_server.faults.random_451_rate = 1.0
    policy = campaign.Policy(concurrency=2, backoff_base=0.01, pause_after=10)
    with pytest.raises(CampaignPaused, match="10 sends in a row failed.*451.*same command again"):
        run(send_settings, smtp_server.url, policy=policy)
    smtp_server.faults.random_451_rate = 0.0
    outcome = run(send_settings, smtp_server.url)
    assert outcome.totals["sent"] == 60
    assert Counter(m.rcpt_tos[0] for m in smtp_server.received) == Counter(r.email for r in readers)


def test_smtp_without_a_signing_key_refuses_to_start(send_settings, populate, smtp_server):
    populate(3)
    with pytest.raises(PostbodeError, match="POSTBODE_SECRET_KEY"):
        run(send_settings.with_overrides(secret_key=""), smtp_server.url)
    assert smtp_server.received == []


# ---------------------------------------------------------------- providers

def _provider_env(monkeypatch, httpserver) -> None:
    base = httpserver.url_for("/").rstrip("/")
    monkeypatch.setenv("POSTBODE_MAILGUN_API_KEY", "key-test-not-secret")
    monkeypatch.setenv("POSTBODE_MAILGUN_API_URL", base)
    monkeypatch.setenv("POSTBODE_POSTMARK_TOKEN", "server-token-test")
    monkeypatch.setenv("POSTBODE_POSTMARK_API_URL", base)


def _mailgun_handler(calls: list):
    def handle(request):
        recipients = request.form.getlist("to")
        calls.append(recipients)
        return Response(json.dumps({"id": f"<{len(calls)}@mg.example.org>", "message": "Queued"}),
                        content_type="application/json")
    return handle


def test_mailgun_campaign_of_2500_takes_3_calls(send_settings, populate, httpserver,
                                                monkeypatch):
    _provider_env(monkeypatch, httpserver)
    readers = populate(2500, locales=("nl",))
    calls: list = []
    httpserver.expect_request("/v3/mg.example.org/messages", method="POST") \
        .respond_with_handler(_mailgun_handler(calls))
    outcome = run(send_settings, "mailgun://mg.example.org?region=eu")
    assert outcome.totals["sent"] == 2500
    assert len(calls) == 3
    addresses = [parseaddr(a)[1] for call in calls for a in call]
    assert sorted(addresses) == sorted(r.email for r in readers)
    auth = httpserver.log[0][0].authorization
    assert auth.type == "basic" and auth.username == "api"


def test_mailgun_batches_hold_one_variant_at_a_time(send_settings, populate, httpserver,
                                                     monkeypatch):
    _provider_env(monkeypatch, httpserver)
    populate(2500, locales=("nl", "en"))
    calls: list = []
    httpserver.expect_request("/v3/mg.example.org/messages", method="POST") \
        .respond_with_handler(_mailgun_handler(calls))
    outcome = run(send_settings, "mailgun://mg.example.org?region=eu")
    assert outcome.totals["sent"] == 2500
    # 1,250 per locale, claimed locale by locale: 1000 en | 250 en + 750 nl | 500 nl;
    # claimed in arrival order, every batch would mix both and take 6 calls.
    assert len(calls) == 4


def test_postmark_campaign_of_2500_takes_5_calls_and_maps_error_codes(
        send_settings, populate, httpserver, monkeypatch):
    _provider_env(monkeypatch, httpserver)
    readers = populate(2500, locales=("nl",))
    inactive = readers[42].email
    calls: list = []

    def handle(request):
        batch = request.get_json()
        calls.append(batch)
        answers = [{"ErrorCode": 406, "Message": "Address is inactive.", "To": m["To"]}
                   if inactive in m["To"] else
                   {"ErrorCode": 0, "Message": "OK", "MessageID": f"pm-{len(calls)}-{i}",
                    "To": m["To"]} for i, m in enumerate(batch)]
        return Response(json.dumps(answers), content_type="application/json")

    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(handle)
    outcome = run(send_settings, "postmark://")
    assert len(calls) == 5 and all(len(c) == 500 for c in calls)
    assert (outcome.totals["sent"], outcome.totals["rejected"]) == (2499, 1)
    rows = journal_rows(send_settings, outcome.campaign_id)
    assert rows[inactive]["state"] == "rejected" and rows[inactive]["last_code"] == 406
    assert rows[readers[0].email]["provider_id"].startswith("pm-")
    assert httpserver.log[0][0].headers["X-Postmark-Server-Token"] == "server-token-test"


def test_429_with_retry_after_is_waited_for_then_sent(send_settings, populate, httpserver,
                                                      monkeypatch):
    _provider_env(monkeypatch, httpserver)
    readers = populate(30, locales=("nl",))
    calls: list = []
    answers = iter([Response("slow down", status=429, headers={"Retry-After": "1"}),
                    Response("oops", status=500)])

    def handle(request):
        calls.append(request.form.getlist("to"))
        nxt = next(answers, None)
        return nxt or _mailgun_handler([])(request)

    httpserver.expect_request("/v3/mg.example.org/messages", method="POST") \
        .respond_with_handler(handle)
    outcome = run(send_settings, "mailgun://mg.example.org?region=eu")
    assert len(calls) == 3 and outcome.totals["sent"] == 30
    rows = journal_rows(send_settings, outcome.campaign_id)
    assert all(rows[r.email]["attempts"] == 3 for r in readers)


def test_an_address_unsubscribed_after_the_campaign_began_is_not_sent(send_settings, populate,
                                                                      state_conn):
    readers = populate(30)
    with pytest.raises(CampaignPaused):
        run(send_settings, "outbox://outbox",
            policy=campaign.Policy(concurrency=1, hourly_quota=10))
    conn = state_conn()
    late = readers[-1].email
    audience.unsubscribe(conn, late, "web")
    outcome = run(send_settings, "outbox://outbox")
    assert (outcome.totals["sent"], outcome.totals["rejected"]) == (29, 1)
    row = journal_rows(send_settings, outcome.campaign_id)[late]
    assert row["state"] == "rejected" and "unsubscribed" in row["last_text"]


def test_a_timeout_after_the_request_was_sent_is_unknown_and_not_resent(
        send_settings, populate, httpserver, monkeypatch):
    import time as _time

    _provider_env(monkeypatch, httpserver)
    populate(12, locales=("nl",))
    calls: list = []

    def slow(request):
        calls.append(request.form.getlist("to"))
        _time.sleep(1.5)
        return _mailgun_handler([])(request)

    httpserver.expect_request("/v3/mg.example.org/messages", method="POST") \
        .respond_with_handler(slow)
    outcome = run(send_settings, "mailgun://mg.example.org?region=eu&timeout=0.5")
    assert len(calls) == 1 and outcome.totals["unknown"] == 12
    again = run(send_settings, "mailgun://mg.example.org?region=eu&timeout=0.5")
    assert len(calls) == 1 and again.totals["unknown"] == 12
