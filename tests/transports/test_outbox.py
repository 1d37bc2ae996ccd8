"""The outbox transport: one .eml per message, atomic, never overwritten."""
from __future__ import annotations

from email import policy
from email.parser import BytesParser

import pytest

from postbode.errors import TransportError
from postbode.transports import Status, open_transport
from postbode.transports.outbox import file_name


def test_each_message_becomes_one_file_under_its_campaign(settings, outgoing):
    messages = [outgoing(f"lezer{n}@example.org", n) for n in range(20)]
    with open_transport("outbox://outbox", settings, env={}, campaign="2018-07/funders") as transport:
        results = transport.send_batch(messages)
    folder = settings.root / "outbox" / "2018-07-funders"
    files = sorted(folder.glob("*.eml"))
    assert len(files) == 20
    assert [r.status for r in results] == [Status.SENT] * 20
    assert [r.message_id for r in results] == [m.message_id for m in messages]
    for message, result in zip(messages, results):
        path = folder / file_name(message.message_id)
        assert result.provider_id == path.name
        parsed = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert parsed["To"] == message.rcpt_to
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert not list(folder.glob(".*"))  # no temporary files left behind


def test_an_existing_file_is_not_overwritten(settings, outgoing):
    message = outgoing("lezer@example.org", 1)
    with open_transport("outbox://outbox", settings, env={}, campaign="c") as transport:
        transport.send_batch([message])
        path = transport.folder / "c" / file_name(message.message_id)
        path.write_bytes(b"kept as it was")
        again = transport.send_batch([message])
    assert again[0].status == "sent"
    assert "already" in again[0].text
    assert path.read_bytes() == b"kept as it was"


def test_without_a_campaign_messages_still_have_a_folder(settings, outgoing):
    with open_transport("outbox://outbox", settings, env={}) as transport:
        transport.send_batch([outgoing("lezer@example.org")])
    assert len(list((settings.root / "outbox" / "no-campaign").glob("*.eml"))) == 1


def test_an_unwritable_folder_is_a_clear_error(settings, tmp_path, outgoing):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(TransportError, match="cannot be created"):
        with open_transport(f"outbox://{blocker}/sub", settings, env={}) as transport:
            transport.send_batch([outgoing("lezer@example.org")])
