"""Journal: exactly-once bookkeeping of a campaign, one row per (campaign, recipient)."""
from __future__ import annotations
