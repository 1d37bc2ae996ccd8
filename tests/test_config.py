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


def _with(project: Path, old: str, new: str) -> Path:
    path = project / "postbode.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def _line_of(path: Path, snippet: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if snippet in line)


def test_a_value_of_the_wrong_type_names_file_line_and_key(project: Path):
    path = _with(project, "[send]\n", '[send]\nconcurrency = "two"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    line = _line_of(path, 'concurrency = "two"')
    assert f"postbode.toml:{line}: [send] concurrency: must be a whole number" in str(caught.value)


def test_a_misspelled_table_or_key_is_an_error_with_a_suggestion(project: Path):
    path = _with(project, "[send]", "[sned]")
    with pytest.raises(ConfigError, match=r"postbode\.toml:\d+: \[sned\]: unknown table; did you mean 'send'"):
        load_settings(path, env={})
    path = _with(project, "[sned]", "[send]")
    path = _with(project, "rate = 0", "raet = 0")
    with pytest.raises(ConfigError, match=r"\[send\] raet: unknown setting; did you mean 'rate'"):
        load_settings(path, env={})


def test_a_key_in_the_wrong_table_says_where_it_belongs(project: Path):
    path = _with(project, "[web]\n", "[web]\nconcurrency = 4\n")
    with pytest.raises(ConfigError, match=r"\[web\] concurrency: unknown setting; it belongs in \[send\]"):
        load_settings(path, env={})


def test_every_problem_is_reported_at_once(project: Path):
    path = _with(project, "rate = 0 ", "rate = -1 ")
    path = _with(project, 'timezone = "Europe/Amsterdam"', 'timezone = "Europe/Amstredam"')
    path = _with(project, 'en = "require"', 'en = "requir"')
    path = _with(project, 'locales = ["nl", "en", "de", "ar"]', 'locales = ["nl", "en-GB", "xx"]')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    text = str(caught.value)
    assert "4 problem(s)" in text
    assert "[send] rate: must be a number of at least 0" in text
    assert "[i18n] timezone: is not a time zone name" in text
    assert "[i18n] completeness: en = 'requir' must be \"fallback\" or \"require\"" in text
    assert "[i18n] locales: 'en-GB': write it as \"en_GB\"" in text


def test_a_default_locale_that_is_not_served_is_refused(project: Path):
    path = _with(project, 'default_locale = "nl"', 'default_locale = "fr"')
    with pytest.raises(ConfigError, match=r"\[i18n\] default_locale: 'fr' is not among \[i18n\] locales"):
        load_settings(path, env={})


def test_a_config_path_that_is_a_folder_says_so(tmp_path: Path):
    with pytest.raises(ConfigError, match="is a folder"):
        load_settings(tmp_path, env={})


def test_concurrency_follows_the_transport_unless_postbode_toml_sets_it(project: Path):
    assert load_settings(project / "postbode.toml", env={}).concurrency == 1     # the outbox
    local = {"POSTBODE_TRANSPORT": "smtp://127.0.0.1:2525?tls=none"}
    assert load_settings(project / "postbode.toml", env=local).concurrency == 4   # a relay here: in step, more is faster
    smtp = {"POSTBODE_TRANSPORT": "smtp://mailer@smtp.example.org:587"}
    assert load_settings(project / "postbode.toml", env=smtp).concurrency == 4
    assert load_settings(project / "postbode.toml", env={"POSTBODE_TRANSPORT": "postmark://"}
                         ).concurrency == 4
    path = _with(project, "[send]\n", "[send]\nconcurrency = 3\n")
    assert load_settings(path, env=smtp).concurrency == 3
    assert load_settings(path, env={}).concurrency == 3
