"""How many connections a transport gets by default (read by config, so it imports nothing of postbode)."""
from __future__ import annotations

from urllib.parse import urlsplit

# Parallel connections when postbode.toml does not say, from benchmarks/bench_smtp.py and
# bench_send.py: a second outbox writer only adds CPU; SMTP servers and providers answer
# after a round trip, and more connections overlap those waits. That holds for a relay on
# this machine too, now that one worker drives its connections in step (PIPELINING):
# 1, 2, 4 and 8 connections to a local sink measured 924, 1,026, 1,238 and 1,462 msg/s.
OUTBOX_CONCURRENCY = 1
CONNECTION_CONCURRENCY = 4


def default_concurrency(url: str) -> int:
    """How many connections a campaign opens to the transport a URL names, unless told."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return CONNECTION_CONCURRENCY
    return OUTBOX_CONCURRENCY if parts.scheme == "outbox" else CONNECTION_CONCURRENCY
