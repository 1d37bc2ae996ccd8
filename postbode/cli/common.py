"""What every command shares: the lazily loaded settings and the consoles."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console

from postbode.config import Settings, load_settings

console = Console(highlight=False)
console_err = Console(stderr=True, highlight=False)


@dataclass
class Context:
    config_path: Path | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings


pass_context = click.make_pass_decorator(Context)
