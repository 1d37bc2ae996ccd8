"""`send --transport URL` without --concurrency: the connections that suit that URL."""
from __future__ import annotations

from pathlib import Path

from postbode.campaign import sender
from postbode.cli.send import _send_settings
from postbode.config import load_settings
from postbode.transports import default_concurrency

from conftest import SAMPLE


def _with_send(project: Path, lines: str) -> Path:
    toml = project / "postbode.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace('transport = "outbox://outbox"', lines, 1), encoding="utf-8")
    return toml


def test_the_flag_url_decides_unless_concurrency_is_given(send_settings, project):
    remote = "smtp://mailer@mail.example.org:587?tls=starttls"
    assert default_concurrency(remote) == 4 and default_concurrency("outbox://outbox") == 1
    assert _send_settings(send_settings, remote, None, None).concurrency == 4
    assert _send_settings(send_settings, "outbox://outbox", None, None).concurrency == 1
    assert _send_settings(send_settings, remote, None, 2).concurrency == 2
    fixed = load_settings(_with_send(project, 'transport = "outbox://outbox"\nconcurrency = 3'), env={})
    assert _send_settings(fixed, remote, None, None).concurrency == 3


def test_send_with_a_transport_flag_opens_what_suits_it(invoke, project, send_settings, populate,
                                                        monkeypatch):
    # postbode.toml names a server across a network (4 connections); --transport the outbox (1)
    _with_send(project, 'transport = "smtp://mailer@mail.example.org:587?tls=starttls"')
    populate(5)
    opened: list[int] = []
    real_connect = sender.connect

    def connect(url, settings, campaign_id, n):
        opened.append(n)
        return real_connect(url, settings, campaign_id, n)

    monkeypatch.setattr(sender, "connect", connect)
    result = invoke("send", SAMPLE, "--segment", "everyone", "--transport", "outbox://outbox", "--yes")
    assert result.exit_code == 0, result.output
    assert opened == [1]
    assert len(list((project / "outbox").rglob("*.eml"))) == 5
    again = invoke("send", SAMPLE, "--segment", "everyone", "--transport", "outbox://outbox",
                   "--new-campaign", "--again", "--concurrency", "2", "--yes")
    assert again.exit_code == 0, again.output
    assert opened == [1, 2]
