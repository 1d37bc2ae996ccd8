"""Settings: defaults → postbode.toml → environment → flags."""
from pathlib import Path

import pytest

from postbode.config import find_config, load_settings
from postbode.errors import ConfigError


def test_sample_settings_resolve_paths_relative_to_the_file(project: Path):
    settings = load_settings(project / "postbode.toml", env={})
    assert settings.source_locale == "nl"
    assert settings.locales[0] == "nl" and {"en", "de", "ar"} <= set(settings.locales)
    assert settings.timezone == "Europe/Amsterdam"
    assert settings.transport == "outbox://outbox"
    assert settings.database == project / "state" / "postbode.sqlite3"
    assert settings.templates_dir == project / "templates"
    assert settings.completeness_for("en") == "require"
    assert settings.completeness_for("xx") == "fallback"


def test_environment_overrides_the_file(project: Path, tmp_path: Path):
    env = {
        "POSTBODE_TRANSPORT": "smtp://127.0.0.1:2525?tls=none",
        "POSTBODE_BASE_URL": "https://news.example.org/",
        "POSTBODE_DB": str(tmp_path / "other.sqlite3"),
        "POSTBODE_SECRET_KEY": "k" * 32,
    }
    settings = load_settings(project / "postbode.toml", env=env)
    assert settings.transport == env["POSTBODE_TRANSPORT"]
    assert settings.base_url == "https://news.example.org"
    assert settings.database == tmp_path / "other.sqlite3"
    assert settings.secret_key == "k" * 32


def test_flags_override_the_environment(settings):
    changed = settings.with_overrides(transport="outbox://elsewhere", rate=None)
    assert changed.transport == "outbox://elsewhere"
    assert changed.rate == settings.rate


def test_broken_toml_names_the_file(tmp_path: Path):
    path = tmp_path / "postbode.toml"
    path.write_text("[sender\nname = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"postbode\.toml: not valid TOML .*line 1"):
        load_settings(path, env={})


def test_a_table_that_is_not_a_table(tmp_path: Path):
    path = tmp_path / "postbode.toml"
    path.write_text("sender = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[sender\] must be a table"):
        load_settings(path, env={})


def test_config_is_found_from_a_subfolder(project: Path):
    sub = project / "newsletters"
    assert find_config(sub) == project / "postbode.toml"


def test_no_config_anywhere_says_what_to_do(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="--config"):
        load_settings(None, env={})
