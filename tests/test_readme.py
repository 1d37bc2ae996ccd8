"""The README's promise: two commands, the first of which works in a fresh clone."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert first_block, "README.md must open with a ```sh block"
    assert text.index(first_block.group(0)) < text.index("\n## "), "the commands come first"
    return [line for line in first_block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_exactly_two_commands():
    commands = readme_commands()
    assert commands == ["./scripts/demo.sh", "./scripts/test.sh"]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "./scripts/test.sh" in ci


@pytest.mark.slow
def test_main_command_works_twice_in_a_fresh_clone(tmp_path: Path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    # The clone holds what is committed; carry over uncommitted edits to the files the
    # main job reads, so the test checks the tree under test.
    for part in ("scripts", "postbode", "templates", "locales", "newsletters", "subscribers",
                 "postbode.toml", "pyproject.toml", "send.py"):
        src, dst = REPO / part, clone / part
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
        else:
            shutil.copy2(src, dst)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTBODE_", "VIRTUAL_ENV"))}
    first = subprocess.run(["./scripts/demo.sh"], cwd=clone, env=env, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    mails = list((clone / "outbox").glob("*/*.eml"))
    assert len(mails) == 25
    assert "imported" in first.stdout
    second = subprocess.run(["./scripts/demo.sh"], cwd=clone, env=env, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "nothing left to send" in " ".join(second.stdout.split())
    assert len(list((clone / "outbox").glob("*/*.eml"))) == 25
