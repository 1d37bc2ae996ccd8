"""Web commands: `serve` the subscriber pages, `preview` a newsletter, `archive` its web versions.

`postbode.web` is imported inside the commands: the package loads Flask, which
every other command does without, and this module is imported for all of them.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from postbode import tokens
from postbode.cli.common import LOCALE, Context, console, pass_context, printable
from postbode.config import Settings
from postbode.errors import ConfigError, PostbodeError

# Threads of the web server `serve` runs (waitress), as in the README's production command.
THREADS = 4


def register(cli: click.Group) -> None:
    """Add this module's commands to the main group."""
    for command in (serve, preview, archive):
        cli.add_command(command)


host_option = click.option("--host", default="127.0.0.1", show_default=True,
                           help="Address to listen on (a preview: only with a real POSTBODE_SECRET_KEY).")
port_option = click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
                           help="Port to listen on (0: any free port).")


@click.command()
@host_option
@port_option
@click.option("--preview", "with_preview", is_flag=True,
              help="Also serve the /preview pages (for fundraisers and translators; never in public).")
@pass_context
def serve(ctx: Context, host: str, port: int, with_preview: bool) -> None:
    """Serve web versions, unsubscribe and preferences pages.

    Needs POSTBODE_SECRET_KEY (the key the mails' links were signed with; several,
    comma-separated, newest first, while rotating). With --preview it serves only
    pages that change nothing: no unsubscribe, preferences or webhook routes.
    In production, run `waitress-serve --call postbode.web:create_app` (README).

    \b
    Example:
      python send.py serve --port 8080
    """
    if with_preview:
        _check_preview_host(ctx.settings, host)
    settings = _signing_settings(ctx.settings, development_ok=with_preview)
    _run(settings, host, port, with_preview, path="/")


@click.command()
@click.argument("newsletter", type=click.Path(path_type=Path))
@click.option("--locale", "-l", type=LOCALE, help="Language to show next to the source (default: the project default).")
@click.option("--segment", "-s", help="Show the view of this segment (segments.yaml).")
@host_option
@port_option
@pass_context
def preview(ctx: Context, newsletter: Path, locale: str | None, segment: str | None,
            host: str, port: int) -> None:
    """Show a newsletter in a browser: the source and a translation side by side.

    \b
    Example:
      python send.py preview newsletters/2018-07-resultaten.yaml --locale de --segment funders
    """
    from postbode.web.versions import find_newsletter_id, view_of_segment

    _check_preview_host(ctx.settings, host)
    settings = _signing_settings(ctx.settings, development_ok=True)
    newsletter_id = find_newsletter_id(settings, newsletter)
    query = [f"locale={locale}"] if locale else []
    if segment:
        view_of_segment(settings, segment)  # an unknown segment is refused here, not in the browser
        query.append(f"segment={segment}")
    path = f"/preview/{newsletter_id}" + ("?" + "&".join(query) if query else "")
    _run(settings, host, port, True, path=path)


@click.command()
@click.argument("newsletter", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Folder to write to (default: <build>/web).")
@pass_context
def archive(ctx: Context, newsletter: Path, out: Path | None) -> None:
    """Write a newsletter's web versions (every locale and view) as static files for hosting.

    The files keep the web app's paths (v/<id>/<locale>/index.html, …) so the
    folder can be served at the base URL.

    \b
    Example:
      python send.py archive newsletters/2018-07-resultaten.yaml --out public
    """
    from postbode.web.archive import write_archive
    from postbode.web.versions import find_newsletter_id

    settings = ctx.settings
    newsletter_id = find_newsletter_id(settings, newsletter)
    out = (out or settings.build_dir / "web").resolve()
    written = write_archive(settings, newsletter_id, out)
    console.print(f"wrote {len(written)} files to {printable(out)}")
    for path in written:
        console.print(f"  {printable(path.relative_to(out))}")


def _signing_settings(settings: Settings, *, development_ok: bool) -> Settings:
    """Settings with a token key; only a preview may fall back to the development key."""
    if not development_ok:
        tokens.require_production_key(settings)  # refuses, saying how to set POSTBODE_SECRET_KEY
        return settings
    # the preview is read-only: it has no link that a key signs or checks
    return tokens.with_development_key(settings)[0]


def _check_preview_host(settings: Settings, host: str) -> None:
    """A preview shows what is not published yet: loopback only, unless a real key is set."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return
    try:
        tokens.require_production_key(settings)
    except ConfigError as err:
        raise ConfigError(f"the preview listens on 127.0.0.1 only: it shows newsletters before "
                          f"they are sent. To serve it on {host}, set a real key first: {err}") from None


def _run(settings: Settings, host: str, port: int, with_preview: bool, *, path: str) -> None:
    """Bind, print the URL, serve until Ctrl-C (waitress: timeouts and a bounded thread pool)."""
    from waitress import create_server

    from postbode.web import create_app

    holder = _Later()
    try:
        server = create_server(holder, host=host, port=port, threads=THREADS,
                               ident="postbode", clear_untrusted_proxy_headers=True)
    except (OSError, ValueError) as err:
        raise PostbodeError(f"cannot listen on {host}:{port} ({err}); choose another --port") from err
    url = f"http://{host}:{server.effective_port}"
    if with_preview:
        # Images and links then point at this server, not the public site.
        settings = settings.with_overrides(base_url=url)
    holder.app = create_app(settings, {"PREVIEW": with_preview})
    click.echo(f"serving on {url}{path}  (Ctrl-C stops)")
    try:
        server.run()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.close()


class _Later:
    """A WSGI app set after the port is known (the preview's base URL needs it)."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)
