"""Render stage: a LocalizedNewsletter becomes the HTML and text of one (locale, segment view) variant."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import textwrap
import traceback
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo

import jinja2
import nh3
from babel import Locale, dates, lists, numbers
from markdown_it import MarkdownIt
from markupsafe import Markup

from postbode import markers, personal
from postbode.config import Settings
from postbode.content import Figure, Newsletter, image_size
from postbode.audience.segments import list_text, load_lists, segment_lists
from postbode.errors import AudienceError, TemplateError
from postbode.i18n import LocalizedNewsletter, direction_of, paragraph_keys
from postbode.personal import Placeholder

HTML_TEMPLATE = "email.html"
TEXT_TEMPLATE = "email.txt"
GREETINGS_TEMPLATE = "partials/greetings.txt"
GREETING_KINDS = ("formal", "informal", "formal_anonymous", "informal_anonymous")

# Plain tokens filled per recipient by the message stage; they survive premailer unchanged.
MARKERS = markers.FOR_TEMPLATES

COLUMN_WIDTH = 600
TEXT_WIDTH = 72

SAFE_TAGS = {
    "p", "br", "strong", "b", "em", "i", "s", "del", "a", "ul", "ol", "li", "blockquote",
    "h3", "h4", "code", "pre", "hr", "table", "thead", "tbody", "tr", "th", "td",
}
SAFE_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
SAFE_URL_SCHEMES = {"http", "https", "mailto"}

# Text shown in another language than the mail's (a fallback) is marked with that language,
# its direction and a class whose alignment premailer inlines; see `text_attributes`.
FALLBACK_CLASS = "fallback-{direction}"
# Top-level Markdown blocks that can carry such a mark, and what the sanitiser lets through of it.
MARKABLE_BLOCKS = ("p", "ul", "ol", "blockquote", "h3", "h4", "table")
MARK_ATTRIBUTES = {tag: {"lang"} for tag in MARKABLE_BLOCKS}
MARK_DIRECTIONS = {tag: {"dir": {"ltr", "rtl"}} for tag in MARKABLE_BLOCKS}
MARK_CLASSES = {tag: {FALLBACK_CLASS.format(direction=d) for d in ("ltr", "rtl")} for tag in MARKABLE_BLOCKS}
FIRST_STRONG_ISOLATE, POP_DIRECTIONAL_ISOLATE = "\u2068", "\u2069"


@dataclass(frozen=True)
class Rendered:
    """One variant of a newsletter: subject, preheader, HTML and text, with markers still in place."""

    newsletter_id: str
    locale: str
    view: str | None
    subject: str
    preheader: str
    html: str
    text: str
    lang: str                     # BCP 47, e.g. "nl-BE"
    direction: str                # "ltr" or "rtl"
    greetings: Mapping[str, str]  # kind → plain text with the name marker
    fields: tuple[Placeholder, ...] = ()  # personal field n is behind markers.field(n)
    # why the reader gets this mail, per segment ("" for any other): markers.REASON's value
    reasons: Mapping[str, str] = dataclasses.field(default_factory=dict)


# --- Markdown ---------------------------------------------------------------

_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def markdown_to_html(source: str, language_at: Callable[[int], str | None] | None = None) -> Markup:
    """Markdown as sanitised HTML: raw HTML is text, only a small safe set of tags survives.

    `language_at(line)` names the language of the source line where it differs
    from the mail's; each top-level block starting there is marked with it.
    """
    tokens = _markdown.parse(source or "")
    if language_at is not None:
        _mark_blocks(tokens, language_at)
    html = _markdown.renderer.render(tokens, _markdown.options, {})
    clean = nh3.clean(
        html,
        tags=SAFE_TAGS,
        attributes={**SAFE_ATTRIBUTES, **MARK_ATTRIBUTES},
        tag_attribute_values=MARK_DIRECTIONS,
        allowed_classes=MARK_CLASSES,
        url_schemes=SAFE_URL_SCHEMES,
        link_rel="noopener noreferrer",
    )
    return Markup(clean)


def _mark_blocks(tokens: list[Any], language_at: Callable[[int], str | None]) -> None:
    for token in tokens:
        if token.level == 0 and token.nesting == 1 and token.map:
            language = language_at(token.map[0])
            if language is not None:
                for name, value in language_attributes(language).items():
                    token.attrSet(name, value)


def language_attributes(language: str) -> dict[str, str]:
    """The attributes marking an element as text in `language`: lang, dir and the aligning class."""
    direction = direction_of(language)
    return {"class": FALLBACK_CLASS.format(direction=direction), "lang": bcp47(language), "dir": direction}


def markdown_to_text(source: str, width: int = TEXT_WIDTH) -> str:
    """Markdown as readable plain text; each link keeps its URL in brackets after the label."""
    writer = _TextWriter(width)
    for token in _markdown.parse(source or ""):
        writer.handle(token)
    return _squeeze("\n".join(writer.lines))


class _TextWriter:
    """Turns markdown-it block tokens into wrapped plain-text lines."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.lines: list[str] = []
        self.lists: list[list[Any]] = []  # per open list: [bullet or None, next number]
        self.quote = 0
        self.row: list[str] | None = None
        self.bullet = ""

    @property
    def indent(self) -> str:
        return "> " * self.quote + "   " * max(len(self.lists) - 1, 0)

    def handle(self, token: Any) -> None:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            self.lists.append(["-", 0] if kind == "bullet_list_open" else [None, int(token.attrGet("start") or 1)])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
            self.blank(when=not self.lists)
        elif kind == "list_item_open":
            self.start_item()
        elif kind in ("blockquote_open", "blockquote_close"):
            self.quote += 1 if kind == "blockquote_open" else -1
            self.blank(when=kind == "blockquote_close")
        elif kind == "tr_open":
            self.row = []
        elif kind == "tr_close":
            self.lines.append(self.indent + " | ".join(self.row or []))
            self.row = None
        elif kind == "inline":
            self.inline(_inline_text(token.children or []))
        elif kind in ("paragraph_close", "heading_close", "table_close"):
            self.blank(when=not token.hidden)
        elif kind in ("fence", "code_block"):
            self.lines.extend(self.indent + "    " + line for line in token.content.rstrip("\n").split("\n"))
            self.blank()
        elif kind == "hr":
            self.lines.extend([self.indent + "-" * 20, ""])

    def start_item(self) -> None:
        bullet, number = self.lists[-1]
        self.bullet = f"{bullet} " if bullet else f"{number}. "
        if bullet is None:
            self.lists[-1][1] += 1

    def inline(self, text: str) -> None:
        if self.row is not None:
            self.row.append(text)
            return
        first, rest = self.indent + self.bullet, self.indent + " " * len(self.bullet)
        self.bullet = ""
        self.lines.extend(_wrap(text, self.width, first, rest))

    def blank(self, when: bool = True) -> None:
        if when:
            self.lines.append("")


def _inline_text(children: Iterable[Any]) -> str:
    """The text of an inline token; links become 'label (url)'."""
    out: list[str] = []
    links: list[tuple[str, int]] = []
    for child in children:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type == "softbreak":
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
        elif child.type == "image":
            out.append(child.content)
        elif child.type == "link_open":
            links.append((str(child.attrGet("href") or ""), len(out)))
        elif child.type == "link_close" and links:
            href, start = links.pop()
            label = "".join(out[start:]).strip()
            if href and href.removeprefix("mailto:") != label:
                out.append(f" ({href})")
    return "".join(out)


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    """Wrap one paragraph, keeping hard line breaks and never breaking a URL."""
    wrapped: list[str] = []
    for number, part in enumerate(text.split("\n")):
        wrapped.extend(textwrap.wrap(
            part, width, initial_indent=first if number == 0 else rest, subsequent_indent=rest,
            break_long_words=False, break_on_hyphens=False,
        ) or [first.rstrip()])
    return wrapped


def safe_url(url: str) -> str:
    """The URL itself if it is http(s) or mailto; anything else (javascript:, data:) is refused."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme not in SAFE_URL_SCHEMES:
        raise TemplateError(f"link {url!r} is not a web or mailto address; "
                            "use a full https:// URL in the newsletter file or postbode.toml")
    return url


def _squeeze(text: str) -> str:
    """At most one blank line in a row, no trailing spaces."""
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


# --- Locale formatting --------------------------------------------------------

FORMAT_FILTERS = ("format_date", "format_datetime", "format_number", "format_currency",
                  "format_percent", "format_list", "format_names", "format_names_text",
                  "format_figure")


def _formatters(locale: Locale, timezone: ZoneInfo) -> dict[str, Callable[..., Any]]:
    """The template filters: Babel's formatters bound to the recipient's full locale, and text."""
    formats = LocaleFormats(locale, timezone)
    filters: dict[str, Callable[..., Any]] = {name: getattr(formats, name) for name in FORMAT_FILTERS}
    filters.update(markdown=markdown_field, plaintext=markdown_to_text, safe_url=safe_url)
    return filters


@dataclass(frozen=True)
class LocaleFormats:
    """Dates, numbers, money and lists the way one locale writes them, in one time zone."""

    locale: Locale
    timezone: ZoneInfo

    def _local(self, value: dt.datetime) -> dt.datetime:
        return value.astimezone(self.timezone) if value.tzinfo else value

    def format_date(self, value: dt.date | dt.datetime, format: str = "medium") -> str:
        if isinstance(value, dt.datetime):
            value = self._local(value).date()
        return dates.format_date(value, format=format, locale=self.locale)

    def format_datetime(self, value: dt.datetime, format: str = "medium") -> str:
        return dates.format_datetime(value, format=format, tzinfo=self.timezone, locale=self.locale)

    def format_number(self, value: Any, format: str | None = None) -> str:
        return numbers.format_decimal(value, format=format, locale=self.locale)

    def format_currency(self, value: Any, currency: str, format: str | None = None) -> str:
        return numbers.format_currency(value, currency, format=format, locale=self.locale)

    def format_percent(self, value: Any, format: str | None = None) -> str:
        return numbers.format_percent(value, format=format, locale=self.locale)

    def format_list(self, items: Iterable[str], style: str = "standard") -> str:
        return lists.format_list([str(item) for item in items], style=style, locale=self.locale)

    def format_names(self, items: Iterable[str], style: str = "standard") -> Markup:
        """A list of names in the locale's list pattern, each isolated in a span with its own direction.

        `dir` works in every mail client, <bdi> does not (Gmail, Outlook, Yahoo).
        """
        names = [str(item) for item in items]
        slots = [f"\ue000{number}\ue001" for number in range(len(names))]
        joined = str(Markup.escape(lists.format_list(slots, style=style, locale=self.locale)))
        for slot, name in zip(slots, names):
            joined = joined.replace(slot, f'<span dir="{name_direction(name)}">{Markup.escape(name)}</span>')
        return Markup(joined)

    def format_names_text(self, items: Iterable[str], style: str = "standard") -> str:
        """A list of names for the plain-text mail; in a right-to-left locale each is a Unicode isolate."""
        names = [str(item) for item in items]
        if self.locale.character_order == "right-to-left":
            names = [f"{FIRST_STRONG_ISOLATE}{name}{POP_DIRECTIONAL_ISOLATE}" for name in names]
        return lists.format_list(names, style=style, locale=self.locale)

    def format_figure(self, figure: Figure) -> str:
        """A figure's value the way its kind asks (a percent is written as 85 for 85 %)."""
        if figure.kind == "currency":
            return self.format_currency(figure.number, figure.currency or "EUR")
        if figure.kind == "percent":
            return self.format_percent(figure.number)
        return self.format_number(figure.number)


def name_direction(name: str) -> str:
    """The direction of a name by its first strong character (what dir="auto" would find)."""
    for char in name:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return "rtl"
        if kind == "L":
            return "ltr"
    return "ltr"


# --- Fallback text: marked with its own language ----------------------------------
# The render context holds `fallback_languages`: entry key → language, for the
# text shown in another language than the mail's. Templates ask through
# `text_attributes(field path, classes)` and `|markdown(field path)`.

def _fallback_languages(context: Any) -> Mapping[str, str]:
    return context.get("fallback_languages") or {}


@jinja2.pass_context
def text_attributes(context: Any, key: str, classes: str = "", aligned: bool = True) -> Markup:
    """' class="…"' for an element showing one text field, plus lang and dir when the text fell back.

    `aligned=False` leaves out the aligning class (images: premailer would make it a floating align="left").
    """
    language = _fallback_languages(context).get(key)
    attributes = language_attributes(language) if language else {}
    fallback_class = attributes.pop("class", "")
    names = " ".join(name for name in (classes, fallback_class if aligned else "") if name)
    if names:
        attributes = {"class": names, **attributes}
    return Markup("".join(f' {name}="{Markup.escape(value)}"' for name, value in attributes.items()))


@jinja2.pass_context
def markdown_field(context: Any, source: str, field: str | None = None) -> Markup:
    """A Markdown text field as HTML; its paragraphs that fell back are marked with their language."""
    source = source or ""
    languages = _fallback_languages(context)
    if field is None or not languages:
        return markdown_to_html(source)
    lead = source[:len(source) - len(source.lstrip())].count("\n")  # paragraph lines count from the text
    starts = [(lead + line, languages.get(key)) for key, line in paragraph_keys(field, source)]

    def language_at(line: int) -> str | None:
        return next((language for start, language in reversed(starts) if start <= line), None)

    return markdown_to_html(source, language_at)


def foreign_fallbacks(localized: LocalizedNewsletter) -> dict[str, str]:
    """Entry keys whose text fell back to another language than the mail's, with that language."""
    mail = _base_language(localized.language)
    languages = {key: localized.fallback_language(key) for key in localized.fallbacks}
    return {key: language for key, language in languages.items()
            if language is not None and _base_language(language) != mail}


def _base_language(locale: str) -> str:
    return locale.replace("-", "_").split("_")[0]


# --- The one Jinja environment factory ---------------------------------------

def make_environment(settings: Settings, locale: str, translations: Any) -> jinja2.Environment:
    """The Jinja environment for one locale; built once per (templates, timezone, locale, catalogs)."""
    return _environment(Path(settings.templates_dir), settings.timezone, str(locale), translations)


@lru_cache(maxsize=64)
def _environment(templates_dir: Path, timezone: str, locale: str, translations: Any) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            disabled_extensions=("txt",),
            default_for_string=True,
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(_formatters(Locale.parse(locale), ZoneInfo(timezone)))
    env.globals["markers"] = MARKERS
    env.globals["text_attributes"] = text_attributes
    return env


# --- Rendering ---------------------------------------------------------------

def render(localized: LocalizedNewsletter, view: str | None, settings: Settings) -> Rendered:
    """Render the HTML and text of one variant; per-recipient values stay as markers."""
    env = make_environment(settings, localized.locale, localized.translations)
    marked, fields = personal.mark(localized.newsletter)
    localized = dataclasses.replace(localized, newsletter=marked)
    newsletter = localized.newsletter
    context = _context(localized, view, settings)
    return Rendered(
        newsletter_id=newsletter.id,
        locale=localized.locale,
        view=view,
        subject=newsletter.subject,
        preheader=newsletter.preheader,
        html=_render(env, HTML_TEMPLATE, context),
        text=_squeeze(_render(env, TEXT_TEMPLATE, context)),
        lang=context["lang"],
        direction=localized.direction,
        greetings=render_greetings(env),
        fields=fields,
        reasons=list_reasons(settings, localized.locale, localized.translations),
    )


def list_reasons(settings: Settings, locale: str, translations: Any) -> dict[str, str]:
    """Per segment, the translated reason(s) of the lists that put its members in it (segments.yaml
    `reason`); "" holds the general reason, for segments of every list or lists without one."""
    general = template_string(settings, locale, translations, "general_reason")
    reasons = {"": general}
    try:
        lists, by_segment = load_lists(settings), segment_lists(settings)
    except AudienceError:  # no segments.yaml yet (a fresh project): every mail gives the general one
        return reasons
    for segment, names in by_segment.items():
        texts = [list_text(translations, "reason", lists[n].reason) for n in names if lists[n].reason]
        reasons[segment] = lists_formatter(locale)(list(dict.fromkeys(texts))) if texts else general
    return reasons


STRINGS_TEMPLATE = "partials/strings.txt"


def template_string(settings: Settings, locale: str, translations: Any, name: str) -> str:
    """One text of templates/partials/strings.txt (a macro), in the locale."""
    env = make_environment(settings, locale, translations)
    module = _guard(STRINGS_TEMPLATE, lambda: env.get_template(STRINGS_TEMPLATE).make_module())
    return str(getattr(module, name)()).strip()


def lists_formatter(locale: str) -> Callable[[list[str]], str]:
    """Babel's "a, b en c" for the locale."""
    return lambda items: lists.format_list(items, locale=Locale.parse(locale))


def render_mail(settings: Settings, locale: str, translations: Any, stem: str,
                context: Mapping[str, Any]) -> tuple[str, str]:
    """(html, text) of a mail other than a newsletter (templates/<stem>.html and .txt), with
    the same environment, page context and filters as a newsletter; the HTML not yet inlined."""
    env = make_environment(settings, locale, translations)
    language = str(locale).split("_")[0]
    rtl = direction_of(language) == "rtl"
    base = {"locale": locale, "lang": bcp47(locale), "dir": "rtl" if rtl else "ltr", "rtl": rtl,
            "start": "right" if rtl else "left", "end": "left" if rtl else "right",
            "column_width": COLUMN_WIDTH,
            "organisation": {"name": settings.organisation_name or settings.sender_name,
                             "postal_address": settings.postal_address, "website": settings.website},
            **context}
    return (_render(env, f"{stem}.html", base), _squeeze(_render(env, f"{stem}.txt", base)))


def render_greetings(env: jinja2.Environment) -> dict[str, str]:
    """Each greeting kind as plain text in this locale, with the name marker where a name goes."""
    module = _guard(GREETINGS_TEMPLATE,
                    lambda: env.get_template(GREETINGS_TEMPLATE).make_module({"name": MARKERS["name"]}))
    return {kind: str(getattr(module, kind)).strip() for kind in GREETING_KINDS}


def _context(localized: LocalizedNewsletter, view: str | None, settings: Settings) -> dict[str, Any]:
    newsletter = localized.newsletter
    rtl = localized.direction == "rtl"
    return {
        "newsletter": newsletter,
        "sections": [_section_view(s, settings) for s in newsletter.sections_for(view)],
        "logos": _logos(newsletter, settings),
        "view": view,
        "locale": localized.locale,
        "lang": bcp47(localized.locale),
        "dir": localized.direction,
        "rtl": rtl,
        "fallback_languages": foreign_fallbacks(localized),
        "start": "right" if rtl else "left",
        "end": "left" if rtl else "right",
        "organisation": {
            "name": settings.organisation_name or settings.sender_name,
            "postal_address": settings.postal_address,
            "website": settings.website,
        },
        "column_width": COLUMN_WIDTH,
    }


def bcp47(locale: str) -> str:
    """'nl_BE' → 'nl-BE'."""
    return str(locale).replace("_", "-")


def _section_view(section: Any, settings: Settings) -> dict[str, Any]:
    image = None
    if section.image is not None:
        width, height = _display_size(section.image.src, section.image.width, section.image.height,
                                      settings, COLUMN_WIDTH)
        image = {"src": image_url(section.image.src, settings), "alt": section.image.alt,
                 "credit": section.image.credit, "width": width, "height": height}
    return {"section": section, "image": image}


def _logos(newsletter: Newsletter, settings: Settings) -> list[dict[str, Any]]:
    if newsletter.acknowledgement is None:
        return []
    result = []
    for logo in newsletter.acknowledgement.logos:
        width, height = _display_size(logo.src, None, None, settings, 140, fallback=(140, 70))
        result.append({"src": image_url(logo.src, settings), "alt": logo.alt, "key": logo.key,
                       "width": width, "height": height})
    return result


def image_url(src: str, settings: Settings) -> str:
    """An absolute URL for an image: https URLs stay, `images/NAME` is served by the web app at /images/NAME."""
    if re.match(r"^https?://", src):
        return src
    return f"{settings.base_url}/{src.lstrip('/')}"


def _display_size(src: str, width: int | None, height: int | None, settings: Settings,
                  max_width: int, fallback: tuple[int, int] = (600, 338)) -> tuple[int, int]:
    """Width and height attributes for an <img>: the given or natural size, scaled to fit `max_width`."""
    if width is None or height is None:
        natural_width, natural_height = _intrinsic_size(src, settings) or fallback
        width = width or natural_width
        height = round(width * natural_height / natural_width)
    if width > max_width:
        width, height = max_width, round(height * max_width / width)
    return width, height


def _intrinsic_size(src: str, settings: Settings) -> tuple[int, int] | None:
    """Pixel size of a local image file next to the newsletters (None for URLs or unknown files)."""
    if re.match(r"^[a-z]+:", src):
        return None
    return image_size(settings.newsletters_dir / src)


def _render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    return _guard(name, lambda: env.get_template(name).render(context))


def _guard(name: str, work: Callable[[], Any]) -> Any:
    """Run a template step; a Jinja failure becomes a TemplateError naming template and line."""
    try:
        return work()
    except jinja2.TemplateNotFound as err:
        raise TemplateError(f"template {err.name!r} not found in the templates folder; "
                            "restore it or check [paths] templates in postbode.toml") from err
    except jinja2.TemplateSyntaxError as err:
        where = f"{err.filename or err.name or name}:{err.lineno}"
        raise TemplateError(f"{where}: template syntax error: {err.message}; fix the template") from err
    except jinja2.TemplateError as err:
        raise TemplateError(f"{_template_location(err, name)}: {err}; "
                            "fix the template or give it the value it uses") from err


def _template_location(err: BaseException, name: str) -> str:
    """'templates/email.html:12' from the innermost traceback frame that belongs to a template."""
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        if frame.filename.endswith((".html", ".txt")) and frame.lineno:
            return f"{frame.filename}:{frame.lineno}"
    return name
