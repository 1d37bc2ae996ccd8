"""Transport URLs: parsing, secrets from the environment, masking, clear errors."""
from __future__ import annotations

import pytest

from postbode.errors import TransportError
from postbode.transports import describe, open_transport
from postbode.transports.mailgun import MailgunTransport
from postbode.transports.outbox import OutboxTransport
from postbode.transports.postmark import PostmarkTransport
from postbode.transports.smtp import SmtpTransport


def test_outbox_is_relative_to_the_project_root(settings):
    transport = open_transport("outbox://outbox", settings, env={}, campaign="c1")
    assert isinstance(transport, OutboxTransport)
    assert transport.folder == settings.root / "outbox"
    assert transport.campaign == "c1"


def test_outbox_absolute_folder(settings, tmp_path):
    transport = open_transport(f"outbox://{tmp_path}/mails", settings, env={})
    assert transport.folder == tmp_path / "mails"


def test_smtp_starttls_with_password_from_environment(settings):
    transport = open_transport("smtp://mailer@smtp.example.org:587?tls=starttls", settings,
                               env={"POSTBODE_SMTP_PASSWORD": "s3cret"})
    assert isinstance(transport, SmtpTransport)
    server = transport.server
    assert (server.host, server.port, server.tls, server.user, server.password) == \
        ("smtp.example.org", 587, "starttls", "mailer", "s3cret")


def test_smtp_defaults_and_local_relay(settings):
    assert open_transport("smtp://mailer:pw@smtp.example.org", settings, env={}).server.port == 587
    relay = open_transport("smtp://127.0.0.1:2525?tls=none", settings, env={}).server
    assert (relay.port, relay.tls, relay.user, relay.password) == (2525, "none", None, None)
    implicit = open_transport("smtps://mailer:pw@smtp.example.org", settings, env={}).server
    assert (implicit.port, implicit.tls) == (465, "tls")


def test_environment_password_wins_over_url(settings):
    transport = open_transport("smtp://mailer:from-url@smtp.example.org", settings,
                               env={"POSTBODE_SMTP_PASSWORD": "from-env"})
    assert transport.server.password == "from-env"


def test_missing_password_names_the_variable(settings):
    with pytest.raises(TransportError, match="POSTBODE_SMTP_PASSWORD"):
        open_transport("smtp://mailer@smtp.example.org", settings, env={})


def test_describe_masks_the_password():
    shown = describe("smtp://mailer:hunter2@smtp.example.org:587?tls=starttls")
    assert "hunter2" not in shown
    assert shown == "smtp://mailer:***@smtp.example.org:587?tls=starttls"
    assert describe("postmark://") == "postmark://"


@pytest.mark.parametrize("url, words", [
    ("ftp://files.example.org", "unknown transport ftp://"),
    ("smtp://mailer:hunter2@smtp.example.org?tls=maybe", "tls='maybe' is not one of"),
    ("smtp://mailer:hunter2@smtp.example.org?tsl=none", "unknown option 'tsl'"),
    ("smtp://mailer:hunter2@smtp.example.org:99999", "not a transport URL"),
    ("smtp://mailer:hunter2@smtp.example.org?timeout=soon", "timeout must be a number"),
    ("smtps://mailer:hunter2@smtp.example.org?tls=none", "implicit TLS"),
    ("mailgun://mg.example.org?region=mars", "region='mars'"),
    ("smtp://mailer:hunter2@smtp.example.org?cafile=/nonexistent/ca.pem", "does not exist"),
])
def test_bad_urls_say_what_is_wrong_without_the_secret(settings, url, words):
    with pytest.raises(TransportError) as caught:
        open_transport(url, settings, env={"POSTBODE_MAILGUN_API_KEY": "k"})
    assert words in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_unknown_scheme_lists_the_accepted_forms(settings):
    with pytest.raises(TransportError) as caught:
        open_transport("sendmail://", settings, env={})
    assert "outbox://outbox" in str(caught.value) and "postmark://" in str(caught.value)


def test_mailgun_regions_and_api_override(settings):
    eu = open_transport("mailgun://mg.example.org?region=eu", settings,
                        env={"POSTBODE_MAILGUN_API_KEY": "key-1"})
    assert isinstance(eu, MailgunTransport)
    assert eu.endpoint == "https://api.eu.mailgun.net/v3/mg.example.org/messages"
    us = open_transport("mailgun://mg.example.org", settings, env={"POSTBODE_MAILGUN_API_KEY": "key-1"})
    assert us.endpoint == "https://api.mailgun.net/v3/mg.example.org/messages"
    local = open_transport("mailgun://mg.example.org", settings,
                           env={"POSTBODE_MAILGUN_API_KEY": "key-1",
                                "POSTBODE_MAILGUN_API_URL": "http://127.0.0.1:8025/"})
    assert local.endpoint == "http://127.0.0.1:8025/v3/mg.example.org/messages"


def test_mailgun_needs_a_domain_and_a_key(settings):
    with pytest.raises(TransportError, match="POSTBODE_MAILGUN_API_KEY"):
        open_transport("mailgun://mg.example.org", settings, env={})
    with pytest.raises(TransportError, match="sending domain"):
        open_transport("mailgun://", settings, env={"POSTBODE_MAILGUN_API_KEY": "k"})


def test_postmark_token_and_api_override(settings):
    transport = open_transport("postmark://?api=http://127.0.0.1:8026", settings,
                               env={"POSTBODE_POSTMARK_TOKEN": "tok"})
    assert isinstance(transport, PostmarkTransport)
    assert transport.endpoint == "http://127.0.0.1:8026/email/batch"
    with pytest.raises(TransportError, match="POSTBODE_POSTMARK_TOKEN"):
        open_transport("postmark://", settings, env={})
