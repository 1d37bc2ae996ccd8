"""Feedback-ID (campaign:list:sender) on every mail, for Gmail's feedback loop."""
from __future__ import annotations

from postbode import message


def test_every_mail_carries_a_feedback_id_of_campaign_list_and_sender(newsletter_messages):
    mails = newsletter_messages(2)
    values = [dict(m.headers)["Feedback-ID"] for m in mails]
    assert values == ["campaign-1:everyone:example.org"] * 2
    assert b"\r\nFeedback-ID: campaign-1:everyone:example.org\r\n" in mails[0].as_bytes()


def test_a_colon_or_space_in_a_field_cannot_add_a_field(newsletter_messages):
    variant = newsletter_messages(1)[0].variant
    value = message.feedback_id("nieuws: juli\r\nBcc: x", "vrienden en donateurs", variant)
    assert value == "nieuws-juli-Bcc-x:vrienden-en-donateurs:example.org"
    assert value.count(":") == 2
