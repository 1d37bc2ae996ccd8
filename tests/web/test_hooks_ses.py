"""/webhooks/ses: SES events through SNS, signed with a certificate made by a test CA.

SNS's host (sns.eu-west-1.amazonaws.com) is mapped to a local HTTPS server with
a certificate from the same CA (tests/fixtures/providers.py `sns`), so the
webhook's strict host check stays as it is in production.
"""
from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from fixtures.providers import SNS_HOST, SNS_TOPIC
from .test_hooks import BRAM, LOTTE, consent, events, journal_text, readers, sent_row  # noqa: F401


def bounce(email: str, kind: str = "Permanent", feedback: str = "fb-1") -> dict:
    """An SES bounce notification, as SES publishes it to the topic."""
    return {"notificationType": "Bounce",
            "bounce": {"bounceType": kind, "bounceSubType": "General", "feedbackId": feedback,
                       "timestamp": "2024-05-01T10:00:00.000Z",
                       "bouncedRecipients": [{"emailAddress": email, "action": "failed",
                                              "status": "5.1.1",
                                              "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
            "mail": {"messageId": "ses-000001", "source": "nieuwsbrief@example.org",
                     "destination": [email],
                     "commonHeaders": {"messageId": f"<pb-{email}>", "subject": "Resultaten"}}}


def complaint(email: str) -> dict:
    return {"notificationType": "Complaint",
            "complaint": {"feedbackId": "fb-c1", "complaintFeedbackType": "abuse",
                          "complainedRecipients": [{"emailAddress": email}]},
            "mail": {"messageId": "ses-000002", "commonHeaders": {}}}


def post(client, message: dict):
    # SNS posts its JSON as text/plain
    return client.post("/webhooks/ses", data=json.dumps(message), content_type="text/plain",
                       headers={"x-amz-sns-message-type": message.get("Type", "")})


def test_the_subscription_is_confirmed_against_the_sns_host(client, web_settings, readers, sns):
    response = post(client, sns.subscription())
    assert response.status_code == 200 and response.json["status"] == "confirmed"
    assert sns.confirmations == [{"Action": "ConfirmSubscription", "TopicArn": SNS_TOPIC,
                                  "Token": "token-0123"}]


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_permanent_bounce_suppresses_and_notes_the_row(client, web_settings, readers, sns,
                                                         version):
    sent_row(web_settings, LOTTE, "ses-000001")
    response = post(client, sns.notification(bounce(LOTTE), version=version))
    assert response.status_code == 200, response.json
    assert response.json["status"] == "suppressed"
    assert consent(web_settings, LOTTE) == "bounced" and consent(web_settings, BRAM) == "subscribed"
    assert journal_text(web_settings, LOTTE).startswith("bounced after sending: Permanent/General")


def test_a_transient_bounce_is_counted_and_a_complaint_suppresses(client, web_settings, readers, sns):
    soft = post(client, sns.notification(bounce(LOTTE, "Transient"), "sns-2"))
    spam = post(client, sns.notification(complaint(BRAM), "sns-3"))
    assert (soft.json["status"], spam.json["status"]) == ("noted", "suppressed")
    assert consent(web_settings, LOTTE) == "subscribed"
    assert events(web_settings, "ses webhook") == ["soft_bounce", "complained"]
    assert consent(web_settings, BRAM) == "complained"
    assert len(sns.downloads) == 1      # the certificate is fetched once, then kept


@pytest.mark.parametrize("url", [
    f"http://{SNS_HOST}/SimpleNotificationService-0000test.pem",
    f"https://{SNS_HOST}.evil.example.org/SimpleNotificationService-0000test.pem",
    "https://example.org/SimpleNotificationService-0000test.pem",
    f"https://user@{SNS_HOST}/SimpleNotificationService-0000test.pem",
    f"https://{SNS_HOST}:8443/SimpleNotificationService-0000test.pem",
    f"https://{SNS_HOST}/not-a-certificate.txt",
])
def test_a_certificate_from_anywhere_else_is_never_fetched(client, web_settings, readers, sns, url):
    message = sns.notification(bounce(LOTTE), SigningCertURL=url)
    response = post(client, message)
    assert response.status_code == 403
    assert sns.downloads == []
    assert consent(web_settings, LOTTE) == "subscribed"


def test_forged_tampered_stale_foreign_and_replayed_messages_change_nothing(
        client, web_settings, readers, sns):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    genuine = sns.notification(bounce(LOTTE))
    forged = sns.sign({k: v for k, v in genuine.items() if k != "Signature"}, "2", key=other_key)
    tampered = {**genuine, "Message": json.dumps(bounce(BRAM))}
    stale = sns.notification(bounce(LOTTE), "sns-old", age=2 * 3600)
    foreign = sns.notification(bounce(LOTTE), "sns-x",
                               TopicArn="arn:aws:sns:eu-west-1:999999999999:someone-else")
    bad_version = {**genuine, "SignatureVersion": "3"}
    answers = [post(client, m).status_code for m in (forged, tampered, stale, foreign, bad_version)]
    assert answers == [403] * 5
    assert consent(web_settings, LOTTE) == "subscribed" and consent(web_settings, BRAM) == "subscribed"
    assert post(client, genuine).json["status"] == "suppressed"
    replay = post(client, genuine)
    assert replay.status_code == 200 and replay.json["status"] == "duplicate"
    assert events(web_settings, "ses webhook") == ["bounced"]


def test_a_subscribe_url_off_the_sns_host_is_not_visited(client, web_settings, readers, sns):
    message = sns.subscription(SubscribeURL="https://example.org/?Action=ConfirmSubscription")
    assert post(client, message).status_code == 403
    assert sns.confirmations == []
