"""Bounce and complaint webhooks of the newer providers: `POST /webhooks/<provider>`.

Each provider's module authenticates a request the way that provider documents
and turns its body into `Event`s; `common.apply` applies them (once per event)
through `apply_event`, like the Postmark and Mailgun webhooks in `web/webhooks.py`.
"""
from __future__ import annotations

from flask import Blueprint

from postbode.web.hooks import brevo, common, mailjet, sendgrid, ses

bp = Blueprint("provider_webhooks", __name__, url_prefix="/webhooks")
bp.register_error_handler(common.Refused, common.refused)
bp.before_request(common.limit_body)

for _module in (ses, brevo, mailjet, sendgrid):
    bp.add_url_rule(f"/{_module.NAME}", _module.NAME, _module.receive, methods=["POST"])
