"""What every command shares: the lazily loaded settings and the consoles.

Only click is imported here at start-up: `postbode --help` loads this module, and
settings, Babel, rich and the address check load when a command first needs them.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from postbode.config import Settings

_CONSOLES: dict[str, "Console"] = {}


def __getattr__(name: str) -> Any:
    """`console` and `console_err` (rich), made on first use (PEP 562)."""
    if name not in ("console", "console_err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _CONSOLES:
        from rich.console import Console

        _CONSOLES[name] = Console(stderr=name == "console_err", highlight=False)
    return _CONSOLES[name]

# C0/C1 control characters (ESC starts terminal sequences, OSC-8 links among them) and the
# bidi overrides that make text read differently from what it is.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(value: object, *, lines: bool = False) -> str:
    """Data (a name, an address, a message quoting a file) safe to print with Rich.

    Markup is escaped (`[link=…]` is shown, not followed) and control characters
    are written out (`\\x1b`), so nothing from a file or a database can colour,
    move, retitle or add links to the operator's terminal. `lines` keeps newlines.
    """
    from rich.markup import escape

    pattern = CONTROL_BUT_NEWLINE if lines else CONTROL
    text = pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(value))
    return escape(text)


@dataclass
class Context:
    config_path: Path | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from postbode.config import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings


pass_context = click.make_pass_decorator(Context)


class LocaleParam(click.ParamType):
    """A locale served by postbode.toml ([i18n] locales), written as Babel writes it (nl-NL → nl_NL)."""

    name = "locale"

    def convert(self, value, param, ctx):  # type: ignore[override]
        from babel import Locale, UnknownLocaleError

        settings = ctx.find_object(Context).settings if ctx and ctx.find_object(Context) else None
        served = ", ".join(settings.locales) if settings else "nl"
        try:
            parsed = Locale.parse(str(value).strip().replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            close = difflib.get_close_matches(str(value), settings.locales if settings else [], n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.fail(f"{value!r} is not a locale; {hint}postbode.toml serves {served}", param, ctx)
        if settings and parsed.language not in {Locale.parse(x).language for x in settings.locales}:
            self.fail(f"{value!r} is not served: [i18n] locales in postbode.toml are {served}; "
                      f"add it there and run `python send.py i18n init {parsed.language}`", param, ctx)
        return str(parsed)


class EmailParam(click.ParamType):
    """An email address, checked for form only (no DNS)."""

    name = "email"

    def convert(self, value, param, ctx):  # type: ignore[override]
        from postbode.audience import normalise
        from postbode.errors import AudienceError

        try:
            normalise(str(value))
        except AudienceError as err:
            self.fail(str(err), param, ctx)
        return str(value).strip()


LOCALE = LocaleParam()
EMAIL = EmailParam()
