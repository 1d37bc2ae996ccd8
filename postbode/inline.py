"""Inline stage: CSS from <style> blocks becomes style= attributes, once per variant (premailer).

The <style> blocks stay (with their !important) for the @media mobile and
dark-mode rules; nothing is fetched from the network and no URL is rewritten,
so the personalisation markers pass through untouched.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from typing import TYPE_CHECKING

import cssutils
from lxml import etree
from premailer import Premailer

from postbode.errors import TemplateError

if TYPE_CHECKING:
    from postbode.render import Rendered

# cssutils logs every property it does not know (mso-*, -webkit-*) as an error.
cssutils.log.setLevel(logging.CRITICAL)

_DOCTYPE = re.compile(r"\s*(<!doctype[^>]*>)", re.IGNORECASE)

# premailer copies text-align and background-color into align and bgcolor attributes, which
# old clients need on table cells but which are invalid HTML on a div, ul or p.
_PRESENTATIONAL_TAGS = frozenset({"table", "tr", "td", "th"})


class _EmailPremailer(Premailer):
    """premailer, adding presentational attributes only where HTML allows them."""

    def _style_to_basic_html_attributes(self, element, style_content, force=False):  # type: ignore[no-untyped-def]
        before = set(element.attrib)
        super()._style_to_basic_html_attributes(element, style_content, force)
        if element.tag not in _PRESENTATIONAL_TAGS:
            for key in set(element.attrib) - before:
                del element.attrib[key]


# One instance serves every variant: transform() keeps no state between calls
# (benchmarks/bench_render.py measures reuse against a fresh instance).
_PREMAILER = _EmailPremailer(
    strip_important=False,
    keep_style_tags=True,
    remove_classes=False,
    disable_validation=True,
    disable_link_rewrites=True,
    # Otherwise CSS like `width: 100%; height: auto` overwrites the pixel width/height
    # attributes of images, which Outlook for Windows sizes them by.
    disable_basic_attributes=["width", "height"],
    allow_network=False,
    allow_loading_external_files=False,
    cssutils_logging_level=logging.CRITICAL,
)


def inline(rendered: "Rendered") -> "Rendered":
    """The same variant with its CSS inlined into the HTML."""
    return dataclasses.replace(rendered, html=inline_html(rendered.html, _label(rendered)))


def inline_html(html: str, label: str = "the e-mail HTML") -> str:
    """Inline the CSS of one HTML document, keeping its doctype and conditional comments."""
    if not html.strip():
        raise TemplateError(f"{label}: the template rendered empty HTML; check templates/email.html")
    try:
        out = _PREMAILER.transform(html, pretty_print=False)
    except (etree.LxmlError, ValueError) as err:
        raise TemplateError(
            f"{label}: the HTML could not be inlined ({err}); check templates/email.html"
        ) from err
    return _keep_doctype(html, out)


def _keep_doctype(source: str, out: str) -> str:
    """premailer drops a doctype it does not recognise letter for letter; put the original back."""
    original = _DOCTYPE.match(source)
    if not original:
        return out
    produced = _DOCTYPE.match(out)
    body = out[produced.end():].lstrip("\n") if produced else out
    return f"{original.group(1)}\n{body}"


def _label(rendered: "Rendered") -> str:
    view = f" ({rendered.view})" if rendered.view else ""
    return f"newsletter {rendered.newsletter_id}, locale {rendered.locale}{view}"
