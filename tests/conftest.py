"""Loads the shared fixtures of tests/fixtures/, one module per real part."""
from __future__ import annotations

from fixtures.project import REPO, SAMPLE  # noqa: F401  (tests import these from conftest)
from fixtures.smtp import free_port  # noqa: F401
from fixtures.state import TEST_SECRET_KEY  # noqa: F401

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
