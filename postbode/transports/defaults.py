"""How many connections a transport gets by default (read by config, so it imports nothing of postbode)."""
from __future__ import annotations

from urllib.parse import urlsplit

# Parallel connections when postbode.toml does not say, from benchmarks/bench_smtp.py and
# bench_send.py: a second outbox writer only adds CPU, and so do more connections to a
# relay on this machine, which answers at once; a transport across a network spends most
# of its time waiting for answers, and more connections overlap that waiting.
LOCAL_CONCURRENCY = 1
NETWORK_CONCURRENCY = 4
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def default_concurrency(url: str) -> int:
    """How many connections a campaign opens to the transport a URL names, unless told."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return NETWORK_CONCURRENCY
    if parts.scheme == "outbox" or (parts.scheme in ("smtp", "smtps")
                                    and (parts.hostname or "") in LOOPBACK_NAMES):
        return LOCAL_CONCURRENCY
    return NETWORK_CONCURRENCY
