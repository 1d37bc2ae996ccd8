"""Static web versions for hosting: the web app's public pages written as files, through the app itself."""
from __future__ import annotations

from pathlib import Path

from flask import Flask

from postbode.files import write_atomically
from postbode.config import Settings
from postbode.content import images, load_newsletter
from postbode.content.model import IMAGE_SUFFIXES
from postbode.errors import PostbodeError
from postbode.web import create_app
from postbode.web.public import cached_version
from postbode.web.publication import is_public
from postbode.web.versions import newsletter_path


def write_archive(settings: Settings, newsletter_id: str, out: Path) -> list[Path]:
    """Render every locale's public view of a newsletter, then (only if all worked) write them under `out`."""
    app = create_app(settings, {"READ_ONLY": True})  # public pages only: needs no signing key
    pages = _web_versions(app, settings, newsletter_id)
    pages.update(_public_pages(app, settings))
    files = {out / url_path.strip("/") / "index.html": body for url_path, body in sorted(pages.items())}
    files.update(_images(settings, out))
    write_atomically(files)
    return list(files)


def _web_versions(app: Flask, settings: Settings, newsletter_id: str) -> dict[str, bytes]:
    """Every web version of the newsletter; all errors reported together, nothing written."""
    newsletter = load_newsletter(newsletter_path(settings, newsletter_id))
    pages: dict[str, bytes] = {}
    problems: list[str] = []
    # only the public view: a segment's edition is for its readers' signed links, which
    # static files cannot check
    for locale in settings.locales:
        url_path = "/".join(["", "v", newsletter_id, locale])
        with app.test_request_context(url_path, base_url=settings.base_url):
            if not is_public(newsletter):
                raise PostbodeError(f"{newsletter_id} is a draft: the archive holds only sent "
                                    "newsletters; send it first, or add 'published: true' to its file")
            try:
                pages[url_path] = cached_version(newsletter, locale, None).html.encode("utf-8")
            except PostbodeError as err:
                problems.append(f"{locale}: {err}")
    if problems:
        raise PostbodeError("the archive was not written; fix these web versions first:\n"
                            + "\n".join(problems))
    return pages


def _public_pages(app: Flask, settings: Settings) -> dict[str, bytes]:
    """The index and the "manage your subscription" pages, as the app serves them."""
    client = app.test_client()
    pages = {}
    for url_path in ["/", "/manage", *(f"/manage/{locale}" for locale in settings.locales)]:
        response = client.get(url_path, base_url=settings.base_url)
        if response.status_code != 200:
            raise PostbodeError(f"the archive was not written: {url_path} answered {response.status}")
        pages[url_path] = response.get_data()
    return pages


def _images(settings: Settings, out: Path) -> dict[Path, bytes]:
    """The newsletters' images, by their place in the archive."""
    source = settings.newsletters_dir / "images"
    if not source.is_dir():
        return {}
    return {out / "images" / p.relative_to(source): _as_sent(p)
            for p in sorted(source.rglob("*")) if p.is_file()}


def _as_sent(path: Path) -> bytes:
    """An image as the mails' readers get it (resized, recompressed); other files as they are."""
    return images.for_mail(path).data if path.suffix.lower() in IMAGE_SUFFIXES else path.read_bytes()
