"""Settings, built once: defaults → postbode.toml → environment → flags, into a frozen object."""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

from postbode.errors import ConfigError

CONFIG_NAME = "postbode.toml"


@dataclass(frozen=True)
class Settings:
    root: Path
    sender_name: str = "postbode"
    sender_email: str = "newsletter@example.org"
    reply_to: str | None = None
    organisation_name: str = ""
    postal_address: str = ""
    website: str = ""
    base_url: str = "http://127.0.0.1:5000"
    list_id: str = "newsletter <newsletter.example.org>"
    unsubscribe_mailto: str | None = None
    source_locale: str = "nl"
    locales: tuple[str, ...] = ("nl",)
    default_locale: str = "nl"
    timezone: str = "Europe/Amsterdam"
    completeness: Mapping[str, str] = field(default_factory=dict)
    newsletters_dir: Path = Path("newsletters")
    templates_dir: Path = Path("templates")
    locales_dir: Path = Path("locales")
    subscribers_dir: Path = Path("subscribers")
    segments_file: Path = Path("subscribers/segments.yaml")
    database: Path = Path("state/postbode.sqlite3")
    build_dir: Path = Path("build")
    transport: str = "outbox://outbox"
    rate: float = 0
    concurrency: int = 2
    hourly_quota: int = 0
    daily_quota: int = 0
    secret_key: str | None = None

    def with_overrides(self, **changes: Any) -> "Settings":
        """A copy with flag values applied (None means: not given)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def completeness_for(self, locale: str) -> str:
        return self.completeness.get(locale, "fallback")


def find_config(start: Path | None = None) -> Path | None:
    """postbode.toml in `start` or the nearest parent folder."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_settings(config: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read postbode.toml (or the nearest one) and apply the environment."""
    env = os.environ if env is None else env
    path = config or find_config()
    if path is None:
        raise ConfigError(
            f"no {CONFIG_NAME} found here or in a parent folder; "
            "run postbode from your project folder or pass --config PATH"
        )
    data = _read_toml(Path(path))
    settings = _from_toml(Path(path).resolve().parent, data, Path(path))
    return _apply_env(settings, env)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; pass the path of your {CONFIG_NAME}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err}); fix the line it names") from err


def _section(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{name}] must be a table of settings")
    return value


def _from_toml(root: Path, data: dict[str, Any], path: Path) -> Settings:
    sender = _section(data, "sender", path)
    org = _section(data, "organisation", path)
    web = _section(data, "web", path)
    mail = _section(data, "mail", path)
    i18n = _section(data, "i18n", path)
    paths = _section(data, "paths", path)
    send = _section(data, "send", path)
    defaults = Settings(root=root)

    def p(key: str, default: Path) -> Path:
        return (root / paths.get(key, default)).resolve()

    locales = tuple(i18n.get("locales", defaults.locales))
    source = i18n.get("source_locale", defaults.source_locale)
    if source not in locales:
        locales = (source, *locales)
    return Settings(
        root=root,
        sender_name=sender.get("name", defaults.sender_name),
        sender_email=sender.get("email", defaults.sender_email),
        reply_to=sender.get("reply_to"),
        organisation_name=org.get("name", ""),
        postal_address=org.get("postal_address", ""),
        website=org.get("website", ""),
        base_url=web.get("base_url", defaults.base_url).rstrip("/"),
        list_id=mail.get("list_id", defaults.list_id),
        unsubscribe_mailto=mail.get("unsubscribe_mailto"),
        source_locale=source,
        locales=locales,
        default_locale=i18n.get("default_locale", source),
        timezone=i18n.get("timezone", defaults.timezone),
        completeness=dict(i18n.get("completeness", {})),
        newsletters_dir=p("newsletters", defaults.newsletters_dir),
        templates_dir=p("templates", defaults.templates_dir),
        locales_dir=p("locales", defaults.locales_dir),
        subscribers_dir=p("subscribers", defaults.subscribers_dir),
        segments_file=p("segments", defaults.segments_file),
        database=p("database", defaults.database),
        build_dir=p("build", defaults.build_dir),
        transport=send.get("transport", defaults.transport),
        rate=float(send.get("rate", 0)),
        concurrency=int(send.get("concurrency", defaults.concurrency)),
        hourly_quota=int(send.get("hourly_quota", 0)),
        daily_quota=int(send.get("daily_quota", 0)),
    )


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    changes: dict[str, Any] = {}
    if env.get("POSTBODE_TRANSPORT"):
        changes["transport"] = env["POSTBODE_TRANSPORT"]
    if env.get("POSTBODE_BASE_URL"):
        changes["base_url"] = env["POSTBODE_BASE_URL"].rstrip("/")
    if env.get("POSTBODE_DB"):
        changes["database"] = Path(env["POSTBODE_DB"]).resolve()
    if env.get("POSTBODE_SECRET_KEY"):
        changes["secret_key"] = env["POSTBODE_SECRET_KEY"]
    return replace(settings, **changes)
