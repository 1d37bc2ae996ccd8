"""Revision 0005 on a database made before it: every subscriber gets a key, webhook ids lose addresses."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from postbode import store

LEGACY = Path(__file__).parents[1] / "data" / "state-bf20dbc.sqlite3"


def test_existing_subscribers_get_unique_keys_and_webhook_ids_are_hashed(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    shutil.copy(LEGACY, path)
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO webhook_events VALUES ('mailjet', '17:bounce:ana@example.org', 'x')")
    raw.execute("INSERT INTO webhook_events VALUES ('postmark', 'Bounce:42', 'x')")
    raw.commit()
    raw.close()
    store.connect(path).close()
    raw = sqlite3.connect(path)
    try:
        keys = [k for (k,) in raw.execute("SELECT subscriber_key FROM subscribers")]
        ids = {i for (i,) in raw.execute("SELECT event_id FROM webhook_events")}
    finally:
        raw.close()
    assert len(keys) == 24 and all(keys) and len(set(keys)) == 24
    assert "Bounce:42" in ids and not any("@" in i for i in ids)
    assert any(i.startswith("sha256:") for i in ids)
