"""Every variant of a newsletter, rendered and inlined: the one render path for build, check and send.

`build_variants` loads the newsletter once, then localizes, renders and inlines
each (locale, view) variant, collecting every problem before it raises, so a
campaign never starts with half its variants broken. `write_build` turns the
result into files for people to look at: HTML, text and a sample .eml each.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from postbode import checks, marker_guard, message, personal
from postbode.audience import Recipient
from postbode.config import Settings
from postbode.content import Newsletter, images, load_newsletter
from postbode.errors import AudienceError, ContentError, InputError, PostbodeError, Problem
from postbode.files import write_atomically
from postbode.i18n import completeness_report, locale_chain, localize
from postbode.inline import inline
from postbode.render import Rendered, render
from postbode.audience.segments import Segment, find_segments, load_segments

VariantKey = tuple[str, str | None]          # (locale, view); view None is the public view
GMAIL_CLIP_BYTES = checks.GMAIL_CLIP_BYTES   # Gmail cuts a mail's HTML off above this
VIEW_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
SAMPLE_NAME = "Voorbeeld Lezer"
SAMPLE_EMAIL = "lezer@example.org"


@dataclass(frozen=True)
class BuildResult:
    """The inlined variants of one newsletter, and which fields fell back per locale."""

    newsletter: Newsletter
    variants: Mapping[VariantKey, Rendered]
    fallbacks: Mapping[str, tuple[str, ...]]

    def variant(self, locale: str, view: str | None = None) -> Rendered:
        return self.variants[(locale, view)]


@dataclass(frozen=True)
class BuiltFile:
    """One variant's files as written: paths and the sizes people care about."""

    key: VariantKey
    subject: str
    html_path: Path
    text_path: Path
    eml_path: Path
    html_bytes: int
    text_bytes: int

    @property
    def clipped(self) -> bool:
        return self.html_bytes > GMAIL_CLIP_BYTES


def build_variants(newsletter_path: Path, locales: Sequence[str], views: Iterable[str | None],
                   settings: Settings) -> BuildResult:
    """Load, localize, render and inline every (locale, view); raise once with all problems."""
    newsletter = load_newsletter(Path(newsletter_path), settings.source_locale)
    marker_guard.check(settings, newsletter.id)  # no marker typed into a template or catalog
    check_audiences(newsletter, settings)
    personal.check(newsletter, settings)
    views = list(dict.fromkeys(views)) or [None]
    variants: dict[VariantKey, Rendered] = {}
    fallbacks: dict[str, tuple[str, ...]] = {}
    failures: list[tuple[str, PostbodeError]] = []
    for locale in dict.fromkeys(locales or settings.locales):
        try:
            localized = localize(newsletter, locale, settings)
        except PostbodeError as err:
            failures.append((locale, err))
            continue
        fallbacks[locale] = tuple(localized.fallbacks)
        for view in views:
            try:
                variants[(locale, view)] = inline(render(localized, view, settings))
            except PostbodeError as err:
                failures.append((variant_name(locale, view), err))
    raise_all(failures)
    return BuildResult(newsletter=newsletter, variants=variants, fallbacks=fallbacks)


def prepare_all(result: BuildResult, settings: Settings) -> dict[VariantKey, message.PreparedVariant]:
    """Check, then message.prepare every variant (markers, header checks); raise once with all problems.

    Check errors (checks.check_variant, e.g. no unsubscribe link) block the variant, so
    build, check and send all refuse it the same way.
    """
    prepared: dict[VariantKey, message.PreparedVariant] = {}
    failures: list[tuple[str, PostbodeError]] = []
    for key, rendered in result.variants.items():
        report = checks.check_variant(rendered)
        if report.errors:
            failures.append((variant_name(*key), checks.CheckError(report)))
            continue
        try:
            prepared[key] = message.prepare(rendered, settings)
        except PostbodeError as err:
            failures.append((variant_name(*key), err))
    raise_all(failures)
    return prepared


def sample_messages(result: BuildResult, settings: Settings) -> dict[VariantKey, message.OutgoingMessage]:
    """One message per variant for a sample reader; `settings` must carry a signing key."""
    prepared = prepare_all(result, settings)
    # One campaign id per variant, so each sample .eml has its own Message-ID.
    return {key: message.build(variant, sample_recipient(*key, view_formality(key[1], settings)),
                               f"preview:{result.newsletter.id}:{variant_name(*key)}", settings)
            for key, variant in prepared.items()}


def sample_recipient(locale: str, view: str | None, formality: str = "formal",
                     segment: str | None = None) -> Recipient:
    """The made-up reader whose name and links fill the preview files."""
    return Recipient(subscriber_id=0, email=SAMPLE_EMAIL, name=SAMPLE_NAME, locale=locale,
                     formality=formality, view=view, segment=segment or view or "everyone")


def segment_reading(segment: str | None, settings: Settings) -> tuple[str | None, str]:
    """(view, formality) a member of the segment reads (None: the public view, formal)."""
    known = _known_segments(settings) or {}
    if segment is None or segment not in known:
        return None, "formal"
    return known[segment].view, known[segment].formality or "formal"


def view_formality(view: str | None, settings: Settings) -> str:
    """How the first segment of segments.yaml with this view addresses its members."""
    known = _known_segments(settings) or {}
    return next((s.formality for s in known.values() if s.view == view and s.formality), "formal")


def local_images(newsletter: Newsletter) -> dict[str, Path]:
    """Each local image `src` of the newsletter (sections and logos) with its file."""
    sources = [s.image.src for s in newsletter.sections if s.image is not None]
    if newsletter.acknowledgement is not None:
        sources += [logo.src for logo in newsletter.acknowledgement.logos]
    return {src: file for src in dict.fromkeys(sources) if (file := newsletter.image_file(src)) is not None}


def sent_images(newsletter: Newsletter) -> dict[str, images.SentImage]:
    """Each local image as readers get it: at most 1200 px wide, recompressed."""
    return {src: images.for_mail(file) for src, file in local_images(newsletter).items()}


def remote_image_notes(newsletter: Newsletter, timeout: float = 5.0) -> list[str]:
    """A warning for each https image over 1 MB (asked with HEAD), a note for one that cannot be asked."""
    import requests  # only `check` asks the network, and only about the newsletter's own images

    sources = [s.image.src for s in newsletter.sections if s.image is not None]
    sources += [logo.src for logo in (newsletter.acknowledgement.logos if newsletter.acknowledgement else [])]
    notes = []
    for src in dict.fromkeys(s for s in sources if s.startswith("https://")):
        try:
            response = requests.head(src, allow_redirects=True, timeout=timeout)
            size = int(response.headers.get("Content-Length") or 0)
        except (requests.RequestException, ValueError) as err:
            notes.append(f"note: could not ask the size of {src} ({type(err).__name__})")
            continue
        if size > images.REMOTE_WARN_BYTES:
            notes.append(f"warning: image {src} is {size / 1_000_000:.1f} MB; every reader downloads it — "
                         f"make it at most {images.MAX_WIDTH} px wide and under 1 MB")
    return notes


def write_build(result: BuildResult, out_dir: Path, settings: Settings) -> list[BuiltFile]:
    """Write `<out>/<id>/<locale>[--<view>]` .html, .txt and .eml, and the images as sent; all or none."""
    folder = Path(out_dir) / result.newsletter.id
    files: dict[Path, bytes] = {folder / src: image.data for src, image in sent_images(result.newsletter).items()}
    built: list[BuiltFile] = []
    for key, mail in sample_messages(result, settings).items():
        stem = folder / variant_name(*key)
        html, text = mail.html.encode("utf-8"), mail.text.encode("utf-8")
        paths = stem.with_suffix(".html"), stem.with_suffix(".txt"), stem.with_suffix(".eml")
        files.update(zip(paths, (html, text, mail.as_bytes())))
        built.append(BuiltFile(key, mail.subject, *paths, len(html), len(text)))
    write_atomically(files)
    return built


def views_for_segments(segments: Iterable[str], settings: Settings) -> list[str | None]:
    """The public view plus the view of each segment named (segments.yaml; without that file, its name)."""
    names = list(dict.fromkeys(segments))
    if Path(settings.segments_file).is_file():
        return list(dict.fromkeys([None, *(s.view for s in find_segments(settings, names))]))
    bad = [n for n in names if not VIEW_NAME.match(n)]
    if bad:
        raise AudienceError(f"segment name {', '.join(map(repr, bad))} is not valid; use lower-case "
                            "letters, digits, '-' and '_', starting with a letter")
    return [None, *names]


def all_views(settings: Settings) -> list[str | None]:
    """The public view and every view a segment of segments.yaml has (what `check` covers)."""
    known = _known_segments(settings)
    return views_for_segments(list(known or {}), settings)


@dataclass(frozen=True)
class CatalogGaps:
    """Languages of a newsletter with no catalog yet, and those of them that block sending."""

    missing: tuple[str, ...]
    blocking: tuple[str, ...]        # policy `require`: no send until translated

    def hint(self) -> str:
        return (f"no translations yet for {', '.join(self.missing)} — run `python send.py i18n "
                "extract` then `i18n update`, and translate the new .po files")


def catalog_gaps(newsletter: Newsletter, locales: Sequence[str], settings: Settings) -> CatalogGaps:
    """The target languages among `locales` whose catalog of this newsletter does not exist."""
    languages = dict.fromkeys(locale_chain(locale, settings)[0] for locale in locales or settings.locales)
    report = completeness_report(newsletter, settings)
    missing = tuple(lang for lang in languages
                    if lang in report and not Path(report[lang].catalog).is_file())
    return CatalogGaps(missing, tuple(lang for lang in missing if report[lang].policy == "require"))


def check_audiences(newsletter: Newsletter, settings: Settings) -> None:
    """Every `audience:` of a section names the view of a segment; a typo would hide the section."""
    known = _known_segments(settings)
    if known is None:
        return
    views = sorted({s.view for s in known.values() if s.view})
    problems = []
    for i, section in enumerate(newsletter.sections):
        for n, name in enumerate(section.audience):
            if name in views:
                continue
            field = f"sections.{section.id}.audience.{n}"
            close = difflib.get_close_matches(name, views, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(Problem(str(newsletter.source_path), newsletter.audience_lines.get(field), None,
                                    f"sections[{i}].audience[{n}]", f"no segment in {settings.segments_file.name} has the view "
                                    f"{name!r}, so nobody would see this section; {hint}"
                                    f"views: {', '.join(views) or 'none'}"))
    if problems:
        raise ContentError(problems)


def _known_segments(settings: Settings) -> dict[str, Segment] | None:
    """The segments of segments.yaml, or None when the project has no such file yet."""
    if not Path(settings.segments_file).is_file():
        return None
    return load_segments(settings)


def check_all(result: BuildResult) -> dict[VariantKey, checks.Report]:
    """checks.check_variant for every variant (cached, so prepare_all does not check twice)."""
    return {key: checks.check_variant(rendered) for key, rendered in result.variants.items()}


def variant_name(locale: str, view: str | None) -> str:
    """`nl` for the public view, `nl--donors` for a segment's view (also the file stem)."""
    return f"{locale}--{view}" if view else locale


def raise_all(failures: list[tuple[str, PostbodeError]]) -> None:
    """Raise nothing, the one error, or one error listing every problem (each once)."""
    if not failures:
        return
    if len(failures) == 1:
        raise failures[0][1]
    if all(isinstance(err, InputError) for _, err in failures):
        problems = list(dict.fromkeys(p for _, err in failures for p in err.problems))
        summaries = [err.summary for _, err in failures if err.summary]
        raise InputError(problems, summary="\n".join([f"problems in {len(failures)} variants:",
                                                       *dict.fromkeys(summaries)]))
    grouped: dict[str, list[str]] = {}
    for name, err in failures:
        grouped.setdefault(str(err), []).append(name)
    lines = [f"{len(failures)} variants failed:"]
    lines += [f"[{', '.join(names)}] {text}" for text, names in grouped.items()]
    raise PostbodeError("\n".join(lines))
