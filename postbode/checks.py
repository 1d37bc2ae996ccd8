"""Checks on an inlined variant: email-client support (caniemail data) and deliverability.

`check_html` maps what the HTML uses (CSS properties, values, at-rules,
selectors, elements, attributes, image formats) to caniemail feature slugs and
looks up their support in the key clients. `check_variant` adds the
deliverability and readability checks and grades everything into a `Report`:
`error` blocks sending, `warning` is worth fixing, `info` is for the curious.
Checks run once per variant (render → inline → check), never per recipient.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import cssselect
import cssutils
from cssselect import parser as selectors
from lxml import etree, html as lxml_html

from postbode import markers
from postbode.errors import PostbodeError

if TYPE_CHECKING:
    from postbode.render import Rendered

# The caniemail client keys (family/platform) that decide a warning, and how people call them.
CLIENT_NAMES = {
    "gmail/desktop-webmail": "Gmail desktop",
    "gmail/ios": "Gmail iOS",
    "gmail/android": "Gmail Android",
    "outlook/windows": "Outlook Windows",
    "outlook/outlook-com": "Outlook.com",
    "apple-mail/macos": "Apple Mail macOS",
    "apple-mail/ios": "Apple Mail iOS",
    "yahoo/desktop-webmail": "Yahoo desktop",
    "samsung-email/android": "Samsung Email",
    "thunderbird/macos": "Thunderbird",
}
KEY_CLIENTS: tuple[str, ...] = tuple(CLIENT_NAMES)

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITIES = (ERROR, WARNING, INFO)

GMAIL_CLIP_BYTES = 102 * 1024     # Gmail hides everything after this much HTML behind "[Message clipped]"
SUBJECT_INFO_CHARS = 78           # desktop inboxes cut a subject off after about this many characters
SUBJECT_WARN_CHARS = 150          # no inbox shows this much: body text pasted into the subject
PREHEADER_CHARS = (40, 140)       # shorter lets body text leak into the preview; longer is cut off
UNSUBSCRIBE_MARKER = markers.UNSUBSCRIBE_URL
MARKER_URL = markers.URL

# Features the templates use on purpose as progressive enhancement: where a client lacks
# them the mail still reads and lays out correctly, so a 'n' there is information, not a warning.
# slug → (clients the reason covers, or None for every client; the reason)
PROGRESSIVE: dict[str, tuple[frozenset[str] | None, str]] = {
    "css-at-media": (None, "media queries only tune the layout for phones; the hybrid "
                           "600 px layout holds without them"),
    "css-at-media-prefers-color-scheme": (None, "dark-mode colours are an extra; the light "
                                                "design stays readable where they are ignored"),
    "css-color-scheme": (None, "a dark-mode hint; clients that ignore it show the light design"),
    "html-meta-color-scheme": (None, "a dark-mode hint; clients that ignore it show the light design"),
    "css-border-radius": (None, "rounded button corners are decoration; square ones work"),
    "css-outline": (None, "only resets outlines on images, which clients without it never draw"),
    "html-doctype": (None, "clients that drop the doctype lay out the tables the same way"),
    "html-aria-label": (None, "a name for screen readers; where it is ignored the mail reads the same"),
    "css-height": (frozenset({"yahoo/desktop-webmail"}),
                   "height:auto only matters once an image shrinks below its width attribute, "
                   "which Yahoo's desktop webmail never does"),
    "css-opacity": (None, "part of hiding the preheader, which mso-hide and display:none also do"),
    "css-max-height": (None, "part of hiding the preheader, which mso-hide and display:none also do"),
    "css-overflow": (None, "part of hiding the preheader, which mso-hide and display:none also do"),
}


class CheckError(PostbodeError):
    """A variant has findings that block sending; the message lists them and what to do."""

    def __init__(self, report: "Report"):
        self.report = report
        label = f"newsletter {report.newsletter_id}, variant {report.variant}"
        super().__init__("\n".join(f"{label}: {issue.message}" for issue in report.errors))


@dataclass(frozen=True)
class Finding:
    """How one key client supports one feature the HTML uses."""

    feature: str       # caniemail slug, e.g. css-display-flex
    title: str
    client: str        # caniemail key, e.g. outlook/windows
    support: str       # y (yes), a (partial), n (no), u (unknown)
    where: str         # first place the feature is used
    note: str = ""


@dataclass(frozen=True)
class Issue:
    """One graded result: a feature some clients lack, or a deliverability problem."""

    severity: str
    code: str                      # a caniemail slug or a check name (gmail-clipping, …)
    message: str
    clients: tuple[str, ...] = ()
    where: str = ""
    detail: str = ""               # why it is only a note, or caniemail's footnote

    @property
    def same_as(self) -> tuple:
        """What makes two variants' issues the same one, whatever the line they point at."""
        return self.severity, self.code, self.message, self.clients


@dataclass(frozen=True)
class Report:
    """Everything checked about one variant."""

    newsletter_id: str
    variant: str                   # `nl`, or `nl--donors` for a segment's view
    issues: tuple[Issue, ...]
    findings: tuple[Finding, ...] = field(default=(), repr=False)

    def of(self, severity: str) -> list[Issue]:
        return [i for i in self.issues if i.severity == severity]

    @property
    def errors(self) -> list[Issue]:
        return self.of(ERROR)

    @property
    def warnings(self) -> list[Issue]:
        return self.of(WARNING)

    @property
    def infos(self) -> list[Issue]:
        return self.of(INFO)

    def summary(self) -> str:
        """`nl: 0 errors, 1 warning, 12 notes`."""
        return (f"{self.variant}: {_count(len(self.errors), 'error')}, "
                f"{_count(len(self.warnings), 'warning')}, {_count(len(self.infos), 'note')}")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- caniemail data -----------------------------------------------------------------

@lru_cache(maxsize=1)
def features() -> dict[str, dict]:
    """The caniemail features by slug, from the copy shipped in postbode/data."""
    path = resources.files("postbode").joinpath("data", "caniemail", "features.json")
    return json.loads(path.read_text(encoding="utf-8"))["features"]


@lru_cache(maxsize=1)
def _css_keywords() -> dict[str, str]:
    """CSS property names that a feature lists as a keyword (border-top-color → css-border)."""
    index: dict[str, str] = {}
    for slug, feature in sorted(features().items()):
        if feature["category"] == "css":
            for word in feature.get("keywords", ()):
                if re.fullmatch(r"[a-z]+(-[a-z]+)+", word):
                    index.setdefault(word, slug)
    return index


def _known(slug: str) -> str | None:
    return slug if slug in features() else None


# --- slug mapping ---------------------------------------------------------------------

POSITION_PROPERTIES = {"top", "right", "bottom", "left"}
FUNCTION_SLUGS = {"var": "css-variables", "calc": "css-unit-calc", "rgb": "css-rgb", "rgba": "css-rgba",
                  "lch": "css-modern-color", "oklch": "css-modern-color", "lab": "css-modern-color",
                  "oklab": "css-modern-color"}
SYSTEM_FONTS = {"system-ui", "ui-serif", "ui-sans-serif", "ui-rounded", "ui-monospace"}
UNIT = re.compile(r"(?<![\w.#-])-?(?:\d+\.?\d*|\.\d+)(%|[a-z]+)(?![\w-])", re.IGNORECASE)
HEX_COLOUR = re.compile(r"#[0-9a-f]+\b", re.IGNORECASE)
FUNCTION = re.compile(r"([a-z][a-z-]*)\(", re.IGNORECASE)
MEDIA_FEATURE = re.compile(r"\(\s*([a-z-]+)\s*[:)]", re.IGNORECASE)


def css_property_slug(name: str) -> str | None:
    """A CSS property's feature: exact, then a feature listing it, then its group."""
    name = name.strip().lower()
    if not name or name.startswith(("-", "mso-")):
        return None  # vendor extensions: caniemail has no pages for them
    if name in POSITION_PROPERTIES:
        return _known("css-left-right-top-bottom")
    exact = _known(f"css-{name}")
    if exact:
        return exact
    if name in _css_keywords():
        return _css_keywords()[name]
    parts = name.split("-")
    for end in range(len(parts) - 1, 0, -1):
        group = features().get(f"css-{'-'.join(parts[:end])}")
        if group and "shorthand" not in group["title"]:  # `font shorthand` is not about font-family
            return f"css-{'-'.join(parts[:end])}"
    return None


def css_value_slugs(prop: str, value: str, important: bool = False) -> set[str]:
    """Features a declaration's value uses: display kinds, !important, functions, units, system fonts."""
    prop, value = prop.strip().lower(), value.strip().lower()
    found: set[str] = set()
    if important:
        found.add("css-important")
    if prop == "display":
        kind = value.split()[0] if value else ""
        found.add({"flex": "css-display-flex", "inline-flex": "css-display-flex",
                   "grid": "css-display-grid", "inline-grid": "css-display-grid",
                   "none": "css-display-none"}.get(kind, ""))
    for name in FUNCTION.findall(value):
        found.add(FUNCTION_SLUGS.get(name) or _known(f"css-{name}") or _known(f"css-function-{name}") or "")
    for unit in UNIT.findall(HEX_COLOUR.sub(" ", value)):
        found.add(_known("css-unit-percent" if unit == "%" else f"css-unit-{unit.lower()}") or "")
    words = set(re.split(r"[\s,'\"]+", value))
    if words & SYSTEM_FONTS:
        found.add("css-sytem-ui")  # the source spells this slug so
    if "initial" in words:
        found.add("css-unit-initial")
    found.discard("")
    return {slug for slug in found if slug in features()}


def at_rule_slugs(keyword: str, prelude: str = "") -> set[str]:
    """`@media (prefers-color-scheme: dark)` → css-at-media, css-at-media-prefers-color-scheme."""
    name = keyword.lstrip("@").strip().lower()
    found = {f"css-at-{name}"}
    if name == "media":
        for feature in MEDIA_FEATURE.findall(prelude.lower()):
            bare = re.sub(r"^(-[a-z]+-)?((min|max)-)?", "", feature)
            found.add("css-at-media-hover" if bare == "any-hover" else f"css-at-media-{bare}")
    return {slug for slug in found if slug in features()}


def selector_slugs(selector_text: str) -> set[str]:
    """Selector features: kinds (class, id, type…), combinators, pseudo-classes and -elements."""
    try:
        parsed = cssselect.parse(selector_text)
    except cssselect.SelectorError:
        return set()
    found: set[str] = set()
    if len(parsed) > 1:
        found.add("css-selector-grouping")
    for selector in parsed:
        if selector.pseudo_element:
            name = selector.pseudo_element if isinstance(selector.pseudo_element, str) \
                else selector.pseudo_element.name
            found.add(f"css-pseudo-element-{name.lower()}")
        found |= _tree_slugs(selector.parsed_tree)
    return {slug for slug in found if slug in features()}


COMBINATORS = {" ": "css-selector-descendant", ">": "css-selector-child",
               "+": "css-selector-adjacent-sibling", "~": "css-selector-general-sibling"}


def _tree_slugs(node: object) -> set[str]:
    """Walk one parsed cssselect tree (a compound's parts are nested through `.selector`)."""
    if isinstance(node, selectors.CombinedSelector):
        return ({COMBINATORS.get(node.combinator, "")}
                | _tree_slugs(node.selector) | _tree_slugs(node.subselector))
    if isinstance(node, selectors.Element):
        if node.element == "*":
            return {"css-selector-universal"}
        return {"css-selector-type"} if node.element else set()
    own = {
        selectors.Class: "css-selector-class", selectors.Hash: "css-selector-id",
        selectors.Attrib: "css-selector-attribute", selectors.Negation: "css-pseudo-class-not",
        selectors.Relation: "css-pseudo-class-has",
    }.get(type(node))
    if isinstance(node, (selectors.Pseudo, selectors.Function)):
        own = f"css-pseudo-class-{(node.ident if isinstance(node, selectors.Pseudo) else node.name).lower()}"
    inner = getattr(node, "selector", None)
    found = {own or ""}
    if inner is not None:
        bare = isinstance(inner, selectors.Element) and inner.element is None
        if not bare and isinstance(node, (selectors.Class, selectors.Hash, selectors.Attrib)):
            found.add("css-selector-chaining")  # `p.intro`, `.a.b`; `a:hover` is not chaining
        found |= _tree_slugs(inner)
    return found


HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
LIST_TAGS = {"ul", "ol", "li", "dl", "dt", "dd"}
IMAGE_MAP_TAGS = {"map", "area"}
NOT_ATTRIBUTE_FEATURES = {"style"}  # html-style is the <style> element, not the attribute
IMAGE_EXTENSIONS = {"jpeg": "jpg", "jpg": "jpg", "svgz": "svg"}


def element_slug(tag: str) -> str | None:
    """An HTML element's feature: its own page or its group (headings, lists, HTML5 semantics)."""
    tag = tag.lower()
    if tag in HEADINGS:
        return _known("html-h1-h6")
    if tag in LIST_TAGS:
        return _known("html-lists")
    if tag in IMAGE_MAP_TAGS:
        return _known("html-image-maps")
    if tag in features().get("html-semantics", {}).get("keywords", ()):
        return "html-semantics"
    own = features().get(f"html-{tag}")
    if own and "attribute" not in own["title"].lower():
        return f"html-{tag}"
    return None


def attribute_slug(name: str) -> str | None:
    """An attribute's feature: `loading` → html-loading-attribute, `srcset`/`sizes` → html-srcset."""
    name = name.lower()
    if name == "loading":
        return _known("html-loading-attribute")
    if name in ("srcset", "sizes"):
        return _known("html-srcset")
    if name == "inert":
        return _known("css-inert-attribute")
    if name in NOT_ATTRIBUTE_FEATURES:
        return None
    own = features().get(f"html-{name}")
    if own and ("attribute" in own["title"].lower() or name.startswith("aria-")):
        return f"html-{name}"
    return None


def image_slug(src: str) -> str | None:
    """An image's format feature from its URL: `data:` → image-base64, else by extension."""
    src = src.strip().lower()
    if src.startswith("data:"):
        return _known("image-base64")
    path = re.split(r"[?#]", src, maxsplit=1)[0]
    ext = path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    return _known(f"image-{IMAGE_EXTENSIONS.get(ext, ext)}") if ext else None


# --- reading the HTML -----------------------------------------------------------------

_PARSER = cssutils.CSSParser(loglevel=logging.CRITICAL, raiseExceptions=False, validate=False)


@lru_cache(maxsize=4096)
def _declarations(style: str) -> tuple[tuple[str, str, bool], ...]:
    """(property, value, important) of a style attribute; cached because templates repeat them."""
    declaration = _PARSER.parseStyle(style)
    return tuple((p.name, p.value, p.priority == "important")
                 for p in declaration.getProperties(all=True))


def _declaration_slugs(declarations: Iterable[tuple[str, str, bool]]) -> set[str]:
    found: set[str] = set()
    for name, value, important in declarations:
        slug = css_property_slug(name)
        if slug:
            found.add(slug)
        found |= css_value_slugs(name, value, important)
    return found


def _describe(element: etree._Element) -> str:
    """`line 12 <td class="px">` — enough to find the element in the built .html file."""
    cls = element.get("class")
    attrs = f' class="{cls}"' if cls else ""
    return f"line {element.sourceline} <{element.tag}{attrs}>"


def _element_uses(element: etree._Element) -> Iterator[tuple[str, str]]:
    """(slug, where) for an element, its attributes, its inline style and what it links to."""
    where = _describe(element)
    tag = element.tag.lower()
    slug = element_slug(tag)
    if tag in ("input", "button"):
        slug = _known(f"html-{tag}-{(element.get('type') or 'submit').lower()}")
    if slug:
        yield slug, where
    for name in element.attrib:
        slug = attribute_slug(name)
        if slug:
            yield slug, where
    if tag == "meta" and (element.get("name") or "").lower() == "color-scheme":
        yield "html-meta-color-scheme", where
    href = (element.get("href") or "").strip().lower() if tag == "a" else ""
    if href.startswith("#"):
        yield "html-anchor-links", where
    elif href.startswith("mailto:"):
        yield "html-mailto-links", where
    if tag == "img" and element.get("src"):
        slug = image_slug(element.get("src"))
        if slug:
            yield slug, where
    if element.get("style"):
        for slug in sorted(_declaration_slugs(_declarations(element.get("style")))):
            yield slug, where


def _stylesheet_uses(css: str, line: int | None) -> Iterator[tuple[str, str]]:
    """(slug, where) for the rules of a <style> block that clients must read themselves.

    The HTML is the inlined one: top-level rules without pseudo-classes are already
    in style attributes, so only at-rules and pseudo-class rules are looked up here.
    """
    yield from _rules_uses(_PARSER.parseString(css).cssRules, f"<style> line {line}")


def _rules_uses(rules: Iterable, where: str, context: str = "") -> Iterator[tuple[str, str]]:
    for rule in rules:
        if rule.type == rule.COMMENT:
            yield "css-comments", where
        elif rule.type == rule.STYLE_RULE and not context and _inlined(rule.selectorText):
            continue  # the inline stage copied it into style attributes, where it is looked up
        elif rule.type == rule.STYLE_RULE:
            place = f"{where}: {context}{rule.selectorText}"
            for slug in sorted(selector_slugs(rule.selectorText)):
                yield slug, place
            for slug in sorted(_declaration_slugs(
                    (p.name, p.value, p.priority == "important") for p in rule.style.getProperties(all=True))):
                yield slug, place
        elif rule.type == rule.MEDIA_RULE:
            prelude = rule.media.mediaText
            for slug in sorted(at_rule_slugs("media", prelude)):
                yield slug, f"{where}: @media {prelude}"
            yield from _rules_uses(rule.cssRules, where, f"@media {prelude} ")
        else:
            keyword = getattr(rule, "atkeyword", None) or _AT_KEYWORD.get(rule.type, "")
            for slug in sorted(at_rule_slugs(keyword)):
                yield slug, f"{where}: {keyword}"


def _inlined(selector_text: str) -> bool:
    """premailer inlines a top-level rule unless a selector has a pseudo-class or -element."""
    return ":" not in selector_text


_AT_KEYWORD = {cssutils.css.CSSRule.FONT_FACE_RULE: "@font-face", cssutils.css.CSSRule.IMPORT_RULE: "@import",
               cssutils.css.CSSRule.PAGE_RULE: "@page", cssutils.css.CSSRule.NAMESPACE_RULE: "@namespace"}


def used_features(html: str) -> dict[str, str]:
    """Every caniemail feature the HTML uses → where it is first used (document order)."""
    if not html.strip():
        return {}
    root = lxml_html.document_fromstring(html)
    used: dict[str, str] = {}
    tree = root.getroottree()
    if tree.docinfo.doctype.lower().strip() == "<!doctype html>":
        used["html-doctype"] = "line 1 <!DOCTYPE html>"
    for node in root.iter():
        if not isinstance(node.tag, str):
            if isinstance(node, etree._Comment):
                used.setdefault("html-comments", f"line {node.sourceline} <!-- -->")
            continue
        for slug, where in _element_uses(node):
            used.setdefault(slug, where)
        if node.tag.lower() == "style" and node.text:
            for slug, where in _stylesheet_uses(node.text, node.sourceline):
                used.setdefault(slug, where)
    return used


def check_html(html: str, *, clients: Sequence[str] = KEY_CLIENTS) -> list[Finding]:
    """For each feature the HTML uses, how each client supports it (y, a, n or u)."""
    findings = []
    for slug, where in used_features(html).items():
        feature = features()[slug]
        for client in clients:
            notes = feature.get("notes", {}).get(client) or ()
            findings.append(Finding(feature=slug, title=feature["title"], client=client,
                                    support=feature["support"].get(client, "u"), where=where,
                                    note=" ".join(notes)))
    return findings


# --- grading --------------------------------------------------------------------------

def grade_findings(findings: Iterable[Finding]) -> list[Issue]:
    """Per feature: 'n' in a key client → warning (info when a deliberate enhancement), 'a' → info."""
    by_feature: dict[str, list[Finding]] = {}
    for finding in findings:
        by_feature.setdefault(finding.feature, []).append(finding)
    issues: list[Issue] = []
    for slug, group in by_feature.items():
        title, where = group[0].title, group[0].where
        lacking = [f.client for f in group if f.support == "n"]
        covered, reason = PROGRESSIVE.get(slug, (frozenset(), ""))
        enhanced = [c for c in lacking if covered is None or c in covered]
        plain = [c for c in lacking if c not in enhanced]
        if plain:
            issues.append(Issue(WARNING, slug, f"{title} is not supported in {client_names(plain)}",
                                tuple(plain), where))
        if enhanced:
            issues.append(Issue(INFO, slug, f"{title} is not supported in {client_names(enhanced)}; "
                                f"used as progressive enhancement: {reason}", tuple(enhanced), where,
                                detail=f"progressive enhancement: {reason}"))
        partial = [f for f in group if f.support == "a"]
        if partial:
            note = next((f.note for f in partial if f.note), "")
            issues.append(Issue(INFO, slug, f"{title} is partly supported in "
                                f"{client_names([f.client for f in partial])}" + (f": {note}" if note else ""),
                                tuple(f.client for f in partial), where, detail=note or "partly supported"))
    return issues


def client_names(clients: Iterable[str]) -> str:
    return ", ".join(CLIENT_NAMES.get(c, c) for c in clients)


# --- deliverability -------------------------------------------------------------------

def check_variant(rendered: "Rendered", *, clients: Sequence[str] = KEY_CLIENTS) -> Report:
    """Client support and deliverability of one inlined variant, graded; cached per content."""
    view = f"--{rendered.view}" if rendered.view else ""
    return _check(rendered.newsletter_id, f"{rendered.locale}{view}", rendered.subject, rendered.preheader,
                  rendered.html, rendered.text, tuple(clients))


@lru_cache(maxsize=64)
def _check(newsletter_id: str, variant: str, subject: str, preheader: str, html: str, text: str,
           clients: tuple[str, ...]) -> Report:
    findings = check_html(html, clients=clients)
    root = lxml_html.document_fromstring(html) if html.strip() else None
    issues = [
        *_check_parts(html, text),
        *_check_subject(subject),
        *_check_preheader(preheader, root),
        *(_check_document(root) if root is not None else []),
        *grade_findings(findings),
    ]
    order = {s: n for n, s in enumerate(SEVERITIES)}
    issues.sort(key=lambda i: order[i.severity])
    return Report(newsletter_id=newsletter_id, variant=variant, issues=tuple(issues), findings=tuple(findings))


def _check_parts(html: str, text: str) -> list[Issue]:
    issues = []
    if not html.strip():
        issues.append(Issue(ERROR, "html-part", "the HTML part is empty; check templates/email.html"))
    if not text.strip():
        issues.append(Issue(ERROR, "text-part", "the plain-text part is empty; spam filters and "
                            "text-only readers need it: check templates/email.txt"))
    for kind, body in (("HTML", html), ("text", text)):
        if body.strip() and UNSUBSCRIBE_MARKER not in body:
            issues.append(Issue(ERROR, "unsubscribe", f"the {kind} part has no unsubscribe link "
                                f"({UNSUBSCRIBE_MARKER}); add it to the template's footer"))
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        issues.append(Issue(WARNING, "gmail-clipping", f"the HTML is {size / 1024:.0f} KB; Gmail clips "
                            f"mails above {GMAIL_CLIP_BYTES // 1024} KB, so shorten it or move content "
                            "to the web version", ("gmail/desktop-webmail", "gmail/ios", "gmail/android")))
    return issues


def _check_subject(subject: str) -> list[Issue]:
    length = len(subject.strip())
    if not length:
        return [Issue(ERROR, "subject", "the subject is empty; set `subject:` in the newsletter")]
    if length > SUBJECT_WARN_CHARS:
        return [Issue(WARNING, "subject", f"the subject has {length} characters; no inbox shows "
                      f"more than about {SUBJECT_INFO_CHARS}, so shorten it")]
    if length > SUBJECT_INFO_CHARS:
        return [Issue(INFO, "subject", f"the subject has {length} characters; inboxes cut it off "
                      f"after about {SUBJECT_INFO_CHARS} (phones sooner), so put what matters first")]
    return []


def _check_preheader(preheader: str, root: etree._Element | None) -> list[Issue]:
    low, high = PREHEADER_CHARS
    length = len(preheader.strip())
    if not length:
        return [Issue(WARNING, "preheader", "there is no preheader, so inboxes preview the first "
                      f"words of the body; set `preheader:` ({low}-{high} characters)")]
    issues = []
    if not low <= length <= high:
        issues.append(Issue(WARNING, "preheader", f"the preheader has {length} characters; inboxes "
                            f"show {low}-{high} well, so lengthen or shorten it"))
    if root is not None and preheader.strip() not in root.text_content():
        issues.append(Issue(WARNING, "preheader", "the preheader is not in the HTML; include "
                            "partials/preheader.html in templates/email.html"))
    return issues


def _check_document(root: etree._Element) -> list[Issue]:
    issues = []
    missing = [a for a in ("lang", "dir") if not root.get(a)]
    if missing:
        issues.append(Issue(WARNING, "html-lang-dir", f"<html> has no {' or '.join(missing)} attribute; "
                            "screen readers and right-to-left clients need both", where="<html>"))
    issues += _check_images(root)
    issues += _check_links(root)
    return issues


def _check_images(root: etree._Element) -> list[Issue]:
    issues = []
    for img in root.iter("img"):
        missing = [a for a in ("alt", "width", "height") if img.get(a) is None]
        if missing:
            issues.append(Issue(WARNING, "img-attributes", f"an image has no {', '.join(missing)}; "
                                "alt text shows while images are blocked and Outlook sizes images "
                                "by width and height", where=_describe(img)))
    return issues


def _check_links(root: etree._Element) -> list[Issue]:
    issues = []
    for link in root.iter("a"):
        href = (link.get("href") or "").strip()
        if not (MARKER_URL.match(href) or re.match(r"^(https?://|mailto:)", href, re.IGNORECASE)):
            issues.append(Issue(WARNING, "link-url", f"a link goes to {href or 'nowhere'!r}; use an "
                                "https://, http:// or mailto: address", where=_describe(link)))
        label = link.text_content().strip() or " ".join(i.get("alt", "") for i in link.iter("img")).strip()
        if not label:
            issues.append(Issue(WARNING, "link-text", f"a link to {href!r} has no text; screen readers "
                                "read out the address instead", where=_describe(link)))
    return issues
