"""What stands in front of every route: the cross-site check, response headers and the access log.

A state-changing request from a browser says where it comes from (`Sec-Fetch-Site`,
`Origin`); one from another site is refused, so a page elsewhere cannot unsubscribe
its visitors. Mail providers' RFC 8058 one-click POSTs and webhooks come from
servers, which send neither header, and pass.
"""
from __future__ import annotations

import logging
import re
import sys
import time
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

from postbode.config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE = frozenset({"same-origin", "none"})  # none: typed in, a bookmark, a mail client
HSTS = "max-age=31536000"
ACCESS_LOG = "postbode.web.access"
# A path segment that looks like a token (long url-safe base64) never reaches the log.
TOKEN_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_\-=.]{32,}")

access_log = logging.getLogger(ACCESS_LOG)


def setup(app: Flask) -> None:
    """Register the hooks on `app`, and give the access log somewhere to go."""
    app.before_request(_refuse_cross_site)
    app.before_request(_start_clock)
    app.after_request(_headers)
    app.after_request(_log_access)
    if not access_log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        access_log.addHandler(handler)
    if access_log.level == logging.NOTSET:
        access_log.setLevel(logging.INFO)


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower-cased, as browsers send it in `Origin`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_cross_site(method: str, fetch_site: str | None, origin: str | None, settings: Settings) -> bool:
    """Whether a request is a browser's state-changing request from another site."""
    if method in SAFE_METHODS:
        return False
    if fetch_site is not None:
        return fetch_site.lower() not in SAME_SITE
    # older browsers send only Origin ("null" from sandboxed frames and data: pages)
    return origin is not None and origin.lower() != origin_of(settings.base_url)


def redact(path: str) -> str:
    """A request path with its tokens replaced, for the log."""
    return TOKEN_SEGMENT.sub("[token]", path)


def signup_origin_allowed(path: str, origin: str | None, settings: Settings) -> bool:
    """A sign-up form on one of the organisation's own sites ([signup] origins) may post here."""
    return path.rstrip("/").split("/")[1:2] == ["subscribe"] and origin is not None \
        and origin.lower().rstrip("/") in {o.lower() for o in settings.signup_origins}


def _refuse_cross_site() -> Response | None:
    settings = current_app.config["POSTBODE_SETTINGS"]
    if signup_origin_allowed(request.path, request.headers.get("Origin"), settings):
        return None
    if is_cross_site(request.method, request.headers.get("Sec-Fetch-Site"),
                     request.headers.get("Origin"), settings):
        current_app.logger.warning("refused a cross-site %s to %s", request.method, redact(request.path))
        return Response("cross-site requests are refused here\n", status=403, mimetype="text/plain")
    return None


def _headers(response: Response) -> Response:
    """Framing, transport security and caching rules for every answer."""
    settings = current_app.config["POSTBODE_SETTINGS"]
    # the preview shows versions in frames of its own page; nothing else is framed
    framing = "SAMEORIGIN" if request.blueprint == "preview" else "DENY"
    response.headers.setdefault("X-Frame-Options", framing)
    if settings.base_url.startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    # pages depend on the request (language, token): no shared cache keeps them
    response.headers.setdefault("Cache-Control", "private")
    return response


def _start_clock() -> None:
    g.started = time.perf_counter()


def _log_access(response: Response) -> Response:
    took = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
    access_log.info('%s "%s %s" %d %.0fms', request.remote_addr or "-", request.method,
                    redact(request.path), response.status_code, took)
    return response
