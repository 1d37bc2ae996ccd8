"""The one exception hierarchy: every message says what is wrong and what to do."""
from __future__ import annotations

from dataclasses import dataclass


class PostbodeError(Exception):
    """Root of every error postbode reports to a user (exit code 1, no traceback)."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class InputError(PostbodeError):
    """One or more problems in a file a person wrote (YAML, CSV, .po, settings)."""

    def __init__(self, problems: list[Problem] | Problem, summary: str | None = None):
        self.problems = problems if isinstance(problems, list) else [problems]
        self.summary = summary
        super().__init__(self._text())

    def _text(self) -> str:
        lines = [self.summary] if self.summary else []
        lines += [str(p) for p in self.problems]
        return "\n".join(lines)


class ConfigError(PostbodeError):
    """postbode.toml or an environment variable is wrong or missing."""


class ContentError(InputError):
    """A newsletter YAML file does not validate."""


class TranslationError(InputError):
    """A catalog is broken or a locale is incomplete where completeness is required."""


class TemplateError(PostbodeError):
    """A template failed to render."""


class AudienceError(PostbodeError):
    """Subscribers, lists or segments are wrong."""


class HeaderInjectionError(PostbodeError):
    """A header value contains CR, LF or NUL."""


class TransportError(PostbodeError):
    """A transport could not be set up or used."""


class CampaignError(PostbodeError):
    """A campaign cannot start or resume as asked."""


class CampaignPaused(CampaignError):
    """Sending stopped cleanly; the message says how to resume."""

    exit_code = 3


class CampaignInterrupted(CampaignPaused):
    """Sending was stopped with Ctrl-C; mails in flight were recorded; run again to resume."""

    exit_code = 130
