"""Loads the shared fixtures of tests/fixtures/, one module per real part."""
from __future__ import annotations

import pytest

# the fixture modules are imported below before pytest loads them as plugins: let their asserts be
# rewritten all the same
pytest.register_assert_rewrite("fixtures")

from fixtures.project import REPO, SAMPLE  # noqa: E402,F401  (tests import these from conftest)
from fixtures.smtp import free_port  # noqa: E402,F401
from fixtures.state import TEST_SECRET_KEY  # noqa: E402,F401

pytest_plugins = [
    "fixtures.project",
    "fixtures.browser",
    "fixtures.smtp",
    "fixtures.http",
    "fixtures.providers",
    "fixtures.state",
    "fixtures.postgres",
    "fixtures.web",
    "fixtures.campaign",
    "fixtures.mailtools",
    "fixtures.postfix",
    "fixtures.dovecot",
]
