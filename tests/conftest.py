"""Shared fixtures: a temporary project, settings, the CLI runner, and real servers."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from postbode.config import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
SAMPLE = "newsletters/2018-07-resultaten.yaml"
PROJECT_PARTS = ("postbode.toml", "newsletters", "templates", "locales", "subscribers", "babel.cfg")


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's own files in a temporary folder, which is also the cwd."""
    root = tmp_path / "project"
    root.mkdir()
    for part in PROJECT_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, root / part, ignore=shutil.ignore_patterns("*.mo"))
        elif src.is_file():
            shutil.copy2(src, root / part)
    for var in ("POSTBODE_TRANSPORT", "POSTBODE_BASE_URL", "POSTBODE_DB", "POSTBODE_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project / "postbode.toml", env={})


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(project: Path, runner: CliRunner):
    """Run a postbode command in the temporary project: invoke("build", SAMPLE)."""
    from postbode.cli import cli

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        return runner.invoke(cli, ["--config", str(project / "postbode.toml"), *args],
                             input=input, env=env, catch_exceptions=False)

    return run


# --- Headless Chromium (rendered mails, web pages) ----------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run (playwright sync API); open pages with browser.new_page()."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
