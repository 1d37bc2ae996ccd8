"""Commands of this group; each parses, then delegates to one pipeline function."""
from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
