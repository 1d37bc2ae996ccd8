"""ADDING_A_PROVIDER.md as a test: every provider module declares and documents what it must."""
from __future__ import annotations

import importlib
import inspect
import re

import pytest

from postbode.transports import ACCEPTED_FORMS, SCHEMES
from postbode.transports.base import Transport

from conftest import REPO

NOT_PROVIDERS = {"outbox", "smtp", "smtps"}       # postbode's own transports, not a provider's API
PROVIDERS = sorted(set(SCHEMES) - NOT_PROVIDERS)
DOCS = (REPO / "docs" / "transports.md").read_text(encoding="utf-8")


def _transport_class(module) -> type[Transport]:
    classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
               if issubclass(c, Transport) and c.__module__ == module.__name__]
    assert len(classes) == 1, f"{module.__name__}: one Transport class expected"
    return classes[0]


def test_every_new_provider_is_checked():
    assert {"mailgun", "postmark", "ses", "brevo", "mailjet", "sendgrid"} <= set(PROVIDERS)


@pytest.mark.parametrize("scheme", PROVIDERS)
def test_the_module_declares_its_batch_limit_events_and_credentials(scheme):
    module = importlib.import_module(SCHEMES[scheme])
    assert isinstance(module.BATCH_LIMIT, int) and module.BATCH_LIMIT >= 1
    assert module.EVENTS and all(isinstance(e, str) and e for e in module.EVENTS)
    assert module.CREDENTIALS and all(re.fullmatch(r"[A-Z][A-Z0-9_]+", c) for c in module.CREDENTIALS)
    cls = _transport_class(module)
    assert cls.scheme == scheme
    assert isinstance(cls.max_batch, int) and cls.max_batch >= 1
    assert callable(module.from_url)
    assert any(form.startswith(f"{scheme}://") for form in ACCEPTED_FORMS)


@pytest.mark.parametrize("scheme", PROVIDERS)
def test_the_provider_is_documented_tested_and_has_its_webhook(scheme, app):
    module = importlib.import_module(SCHEMES[scheme])
    section = re.search(rf"^## .*\b{_title(scheme)}\b.*$(.*?)(?=^## )", DOCS, re.M | re.S)
    assert section, f"docs/transports.md has no section for {scheme}"
    for name in (*module.CREDENTIALS, f"{scheme}://"):
        assert name in DOCS, f"docs/transports.md does not mention {name}"
    for event in module.EVENTS:
        assert f"`{event}`" in DOCS or event in section.group(1), f"{scheme}: event {event} undocumented"
    assert (REPO / "tests" / "transports" / f"test_{scheme}.py").is_file()
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    assert f"/webhooks/{scheme}" in routes


def _title(scheme: str) -> str:
    return {"ses": "Amazon SES", "sendgrid": "SendGrid"}.get(scheme, scheme.capitalize())
