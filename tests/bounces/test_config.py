"""[bounces] in postbode.toml, and the commands that need it."""
from pathlib import Path

import pytest

from postbode.config import load_settings
from postbode.errors import ConfigError


def add(project: Path, text: str) -> Path:
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n[bounces]\n" + text, encoding="utf-8")
    return toml


def test_bounce_settings_and_their_defaults(project: Path):
    assert load_settings(project / "postbode.toml", env={}).bounce_domain is None
    settings = load_settings(add(project, 'domain = "bounces.example.org"\nsoft_limit = 5\n'),
                             env={})
    assert settings.bounce_domain == "bounces.example.org"
    assert (settings.bounce_soft_limit, settings.bounce_soft_days) == (5, 30)
    assert settings.bounce_folder == "postbode/processed"


def test_a_bad_bounce_domain_names_the_line(project: Path):
    toml = add(project, 'domain = "bounces@example.org"\nsoft_days = 0\n')
    lines = toml.read_text(encoding="utf-8").splitlines()
    with pytest.raises(ConfigError) as err:
        load_settings(toml, env={})
    message = str(err.value)
    assert f"postbode.toml:{len(lines) - 1}: [bounces] domain: must be a domain name" in message
    assert f"postbode.toml:{len(lines)}: [bounces] soft_days" in message


def test_bounce_commands_without_a_domain_say_what_to_add(invoke):
    shown = invoke("bounces", "receive", "--port", "0")
    assert shown.exit_code == 1 and '[bounces] domain = "bounces.example.org"' in shown.output
