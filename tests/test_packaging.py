"""pyproject.toml: every dependency pinned to a compatible release, and the installed ones match."""
from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    listed = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(text) for text in listed]


def test_the_pipeline_libraries_are_all_listed() -> None:
    names = {r.name.lower() for r in requirements()}
    assert {"jinja2", "babel", "premailer", "pyyaml", "pydantic", "markdown-it-py", "click", "rich"} <= names
    assert {"pytest", "aiosmtpd", "pytest-httpserver"} <= names


@pytest.mark.parametrize("requirement", requirements(), ids=lambda r: r.name)
def test_each_dependency_has_a_compatible_release_pin_that_the_environment_meets(requirement: Requirement) -> None:
    (spec,) = requirement.specifier
    # Babel is pinned exactly: a CLDR update changes formatted dates and money (golden files).
    assert spec.operator == ("==" if requirement.name.lower() == "babel" else "~="), str(requirement)
    assert requirement.specifier.contains(version(requirement.name)), \
        f"{requirement.name} {version(requirement.name)} installed, pyproject asks {spec}"
