"""The command line as a whole: help and examples everywhere, clean errors, one CLI under two names."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import click
import pytest

from postbode.cli import cli
from postbode.errors import PostbodeError
from conftest import REPO, SAMPLE

POSTBODE_SCRIPT = Path(sys.executable).parent / "postbode"


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under `group`, groups included: ("subscribers", "import"), …"""
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((*path, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found


ALL_COMMANDS = [()] + _commands(cli.load_all())


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def test_the_walk_finds_the_documented_commands():
    names = {" ".join(p) for p in ALL_COMMANDS}
    expected = {"build", "check", "send", "report", "preview", "serve", "archive",
                "i18n extract", "i18n init", "i18n update", "i18n compile", "i18n status",
                "subscribers import", "subscribers list", "subscribers export", "subscribers forget",
                "subscribers unsubscribe", "subscribers segments"}
    assert expected <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "postbode")
def test_every_command_has_help_a_summary_and_an_example(runner, path):
    result = runner.invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    command = _command(path)
    summary = (command.help or "").strip().splitlines()[0] if command.help else ""
    assert summary and summary.endswith("."), f"{path}: no one-line summary"
    assert summary in " ".join(result.output.split())
    assert "Example" in result.output, f"{' '.join(path)} --help has no Example section"
    example_part = result.output.split("Example", 1)[1]
    lines = [line.strip() for line in example_part.splitlines()]
    assert any(line.startswith("python send.py ") for line in lines), \
        f"{' '.join(path)}: no example command line starting with `python send.py`"


def test_an_unknown_command_is_a_clean_error(invoke):
    result = invoke("frobnicate")
    assert result.exit_code == 1
    assert "No such command 'frobnicate'" in result.output
    assert "Traceback" not in result.output
    result = invoke("subscribers", "improt")
    assert result.exit_code == 1
    assert "No such command 'improt'" in result.output


def test_a_wrong_argument_exits_1_with_the_reason(invoke, project: Path):
    result = invoke("check", "newsletters")
    assert result.exit_code == 1
    assert "'newsletters' is a directory" in result.output


def test_a_postbode_error_without_debug_is_one_clean_line(runner, project: Path):
    result = runner.invoke(cli, ["--config", str(project / "postbode.toml"), "check", "newsletters/nope.yaml"])
    assert result.exit_code == 1
    assert "error:" in result.output and "nope.yaml" in result.output
    assert result.exc_info is None or result.exc_info[0] is SystemExit


def test_debug_lets_the_error_through_with_its_traceback(runner, project: Path):
    result = runner.invoke(cli, ["--config", str(project / "postbode.toml"), "--debug",
                                 "check", "newsletters/nope.yaml"])
    assert result.exit_code == 1
    assert isinstance(result.exception, PostbodeError)


def _run(*args: str, cwd: Path, program: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTBODE_")}
    env["COLUMNS"] = "100"
    command = program or [sys.executable, str(REPO / "send.py")]
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_traceback_only_with_debug_in_a_real_process(project: Path):
    plain = _run("check", "newsletters/nope.yaml", cwd=project)
    assert plain.returncode == 1
    assert "error:" in plain.stderr and "Traceback" not in plain.stderr
    debug = _run("--debug", "check", "newsletters/nope.yaml", cwd=project)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "ContentError" in debug.stderr or "PostbodeError" in debug.stderr


def test_version(project: Path):
    result = _run("--version", cwd=project)
    assert result.returncode == 0
    assert version("postbode") in result.stdout


def test_send_py_and_the_console_script_are_the_same_cli(project: Path):
    assert POSTBODE_SCRIPT.is_file(), "install the project (pip install -e .) for the postbode script"
    for args in (["--help"], ["subscribers", "--help"], ["--version"], ["frobnicate"]):
        via_file = _run(*args, cwd=project)
        via_script = _run(*args, cwd=project, program=[str(POSTBODE_SCRIPT)])
        assert (via_file.returncode, via_file.stdout, via_file.stderr) == \
               (via_script.returncode, via_script.stdout, via_script.stderr), args
    assert "Usage: postbode" in _run("--help", cwd=project).stdout


# --- Arguments checked before any work ---------------------------------------

@pytest.mark.parametrize("locale, message", [
    ("xx", "'xx' is not a locale; postbode.toml serves nl, en, de, ar"),
    ("fr", "'fr' is not served: [i18n] locales in postbode.toml are nl, en, de, ar"),
])
def test_a_misspelled_or_unserved_locale_is_refused(invoke, project: Path, locale, message):
    result = invoke("build", SAMPLE, "--locale", locale)
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert not (project / "build").exists()


def test_a_locale_with_a_hyphen_is_written_the_babel_way(invoke, project: Path):
    result = invoke("build", SAMPLE, "--locale", "nl-BE")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (project / "build" / "2018-07-resultaten").iterdir()) == \
        ["images", "nl_BE.eml", "nl_BE.html", "nl_BE.txt"]


def test_test_to_needs_an_email_address(invoke, project: Path):
    result = invoke("send", SAMPLE, "--segment", "funders", "--test-to", "proef.example.org")
    assert result.exit_code == 1
    assert "'proef.example.org' is not an email address" in result.output
    assert not (project / "outbox").exists()


@pytest.mark.parametrize("command", ["forget", "unsubscribe"])
def test_forget_and_unsubscribe_need_an_email_address(invoke, command):
    result = invoke("subscribers", command, "nobody")
    assert result.exit_code == 1
    assert "'nobody' is not an email address" in result.output


def test_a_typo_in_postbode_toml_stops_every_command(invoke, project: Path):
    toml = project / "postbode.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("[send]\n", '[send]\nconcurency = 2\n'),
                    encoding="utf-8")
    result = invoke("check", SAMPLE)
    assert result.exit_code == 1
    assert "[send] concurency: unknown setting; did you mean 'concurrency'?" in result.output


def test_a_state_file_that_is_not_a_database(invoke, project: Path):
    toml = project / "postbode.toml"
    result = invoke("subscribers", "list", env={"POSTBODE_DB": str(toml)})
    assert result.exit_code == 1
    assert "cannot open the state database" in result.output


def test_i18n_init_refuses_the_source_language_and_writes_regional_folders_the_babel_way(invoke, project: Path):
    result = invoke("i18n", "init", "nl-NL")
    assert result.exit_code == 1
    assert "the source language" in result.output
    assert not list((project / "locales").glob("nl*"))
    result = invoke("i18n", "init", "pt-BR")
    assert result.exit_code == 0, result.output
    assert (project / "locales" / "pt_BR" / "LC_MESSAGES" / "messages.po").is_file()
    assert not (project / "locales" / "pt-BR").exists()


def test_i18n_compile_with_a_broken_catalog_writes_no_mo_file(invoke, project: Path):
    broken = project / "locales" / "de" / "LC_MESSAGES" / "messages.po"
    broken.write_text(broken.read_text(encoding="utf-8") + '\nmsgid "half\n', encoding="utf-8")
    result = invoke("i18n", "compile")
    assert result.exit_code == 1
    assert "messages.po:" in result.output and "no .mo file was written" in " ".join(result.output.split())
    assert list((project / "locales").rglob("*.mo")) == []


def test_report_csv_into_a_missing_folder_is_a_clean_error(invoke, project: Path, tmp_path: Path):
    assert invoke("send", SAMPLE, "--segment", "funders", "--yes").exit_code == 0
    target = tmp_path / "no-such-folder" / "sent.csv"
    result = invoke("report", "2018-07-resultaten--funders", "--csv", str(target))
    assert result.exit_code == 1
    assert f"{target}: could not write the report" in " ".join(result.output.split())


def test_archive_to_an_unwritable_place_is_a_clean_error_and_writes_nothing(invoke, project: Path):
    monkey_key = {"POSTBODE_SECRET_KEY": "archive-test-key-not-secret"}
    blocked = project / "postbode.toml" / "web"          # a folder inside a file cannot be made
    result = invoke("archive", SAMPLE, "--out", str(blocked), env=monkey_key)
    assert result.exit_code == 1
    assert "could not write it" in result.output


def test_archive_writes_pages_and_images(invoke, project: Path):
    result = invoke("archive", SAMPLE, "--out", "public", env={"POSTBODE_SECRET_KEY": "archive-key-0123456789"})
    assert result.exit_code == 0, result.output
    assert (project / "public" / "v" / "2018-07-resultaten" / "de" / "index.html").is_file()
    images = project / "newsletters" / "images"
    for image in images.iterdir():
        assert (project / "public" / "images" / image.name).read_bytes() == image.read_bytes()
