"""Settings, built once: defaults → postbode.toml → environment → flags, into a frozen object."""
from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

from postbode.errors import ConfigError
from postbode.transports.defaults import default_concurrency

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
    i18n_wrap: int = 79          # .po line width: GNU gettext's and Poedit's
    newsletters_dir: Path = Path("newsletters")
    templates_dir: Path = Path("templates")
    locales_dir: Path = Path("locales")
    subscribers_dir: Path = Path("subscribers")
    segments_file: Path = Path("subscribers/segments.yaml")
    database: Path | str = Path("state/postbode.sqlite3")  # a SQLite file, or a database URL
    build_dir: Path = Path("build")
    transport: str = "outbox://outbox"
    rate: float = 0
    concurrency: int = 1            # unless set: transports.default_concurrency(transport)
    concurrency_set: bool = True    # False: postbode.toml left it to the transport's default
    hourly_quota: int = 0
    daily_quota: int = 0
    secret_key: str | None = None
    preferences_link_days: int = 365  # a preferences link's life; unsubscribe links never expire
    bounce_domain: str | None = None          # [bounces] domain: VERP envelope senders
    bounce_soft_limit: int = 3                # soft bounces that suppress …
    bounce_soft_days: int = 30                # … within this many days
    bounce_folder: str = "postbode/processed"  # IMAP folder processed bounces move to
    signup_origins: tuple[str, ...] = ()      # [signup] origins: other sites whose forms may post
    confirm_link_days: int = 7                # a confirmation link's life
    unconfirmed_days: int = 30                # unconfirmed sign-ups older than this are purged
    min_fill_seconds: float = 3               # a form sent back faster than this is a bot's

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
    data, text = _read_toml(Path(path))
    settings = _from_toml(Path(path).resolve().parent, data, Path(path), text)
    return _apply_env(settings, env)


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """The parsed file and its text (for line numbers)."""
    try:
        text = path.read_text(encoding="utf-8")
        return tomllib.loads(text), text
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found; pass the path of your {CONFIG_NAME}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; pass the path of the {CONFIG_NAME} file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the file ({err}); check its permissions "
                          "and that it is UTF-8 text") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err}); fix the line it names") from err


# Every key postbode.toml may hold, by table; anything else is a typo to report.
SCHEMA: dict[str, tuple[str, ...]] = {
    "sender": ("name", "email", "reply_to"),
    "organisation": ("name", "postal_address", "website"),
    "web": ("base_url", "preferences_link_days"),
    "mail": ("list_id", "unsubscribe_mailto"),
    "i18n": ("source_locale", "locales", "default_locale", "timezone", "completeness", "wrap"),
    "paths": ("newsletters", "templates", "locales", "subscribers", "segments", "database", "build"),
    "send": ("transport", "rate", "concurrency", "hourly_quota", "daily_quota"),
    "bounces": ("domain", "soft_limit", "soft_days", "processed_folder"),
    "signup": ("origins", "confirm_link_days", "unconfirmed_days", "min_fill_seconds"),
}
COMPLETENESS_POLICIES = ("fallback", "require")
MAX_CONCURRENCY = 64


class _Reader:
    """Reads postbode.toml's values by table and key, collecting every problem with its line."""

    def __init__(self, path: Path, data: dict[str, Any], text: str):
        self.path, self.data = path, data
        self.lines = _key_lines(text)
        self.problems: list[str] = []

    def complain(self, table: str, key: str | None, message: str) -> None:
        line = self.lines.get((table, key))
        where = f"{self.path}:{line}" if line else str(self.path)
        name = f"[{table}] {key}" if key else f"[{table}]"
        self.problems.append(f"{where}: {name}: {message}")

    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{self.path}: [{name}] must be a table of settings")
        return value

    def get(self, table: str, key: str, check: Callable[[Any], str | None], default: Any = None) -> Any:
        """The value of `table.key` if present and valid (else `default`, with a problem noted)."""
        section = self.table(table)
        if key not in section:
            return default
        value = section[key]
        problem = check(value)
        if problem:
            self.complain(table, key, f"{problem} (found {value!r})")
            return default
        return value

    def check_unknown(self) -> None:
        """Unknown tables and keys, each with a 'did you mean' where one is close."""
        for name, value in self.data.items():
            if name not in SCHEMA:
                tables = ", ".join(f"[{t}]" for t in SCHEMA)
                self.complain(name, None, "unknown table" + (_did_you_mean(name, SCHEMA)
                                                             or f"; the tables are {tables}"))
                continue
            if not isinstance(value, dict):
                continue
            for key in value:
                if key not in SCHEMA[name]:
                    self.complain(name, key, "unknown setting" + _did_you_mean(key, SCHEMA[name], name))

    def raise_problems(self) -> None:
        if self.problems:
            raise ConfigError(f"{self.path}: {len(self.problems)} problem(s); fix them and run again:\n"
                              + "\n".join(self.problems))


def _key_lines(text: str) -> dict[tuple[str, str | None], int]:
    """(table, key) → line number, and (table, None) → the table header's line."""
    lines: dict[tuple[str, str | None], int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"\s*\[\s*([^\]\s]+)\s*\]", line)
        if header:
            table = header.group(1)
            parts = table.split(".")
            lines.setdefault((table, None), number)
            if len(parts) == 2:
                lines.setdefault((parts[0], parts[1]), number)
            continue
        key = re.match(r"\s*\"?([A-Za-z0-9_-]+)\"?\s*=", line)
        if key:
            lines.setdefault((table, key.group(1)), number)
            if not table:
                lines.setdefault((key.group(1), None), number)
    return lines


def _did_you_mean(name: str, known: Iterable[str], table: str | None = None) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    home = [t for t, keys in SCHEMA.items() if name in keys and t != table]
    if home:
        return f"; it belongs in [{home[0]}]"
    if table is not None:
        return f"; [{table}] accepts: {', '.join(SCHEMA[table])}"
    return ""


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be text in quotes"


def _filled(value: Any) -> str | None:
    return _text(value) or (None if value.strip() else "must not be empty")


# A plain ASCII address that email-validator accepts for certain: dot-atom local part, a
# domain of letter-digit-hyphen labels under an alphabetic top level that is not one of
# its special-use names. Only other addresses load email-validator, so commands that do
# not send start without it.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64})*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?!(?:arpa|invalid|local|localhost|onion|test)$)[A-Za-z]{2,63}")


def _email(value: Any) -> str | None:
    if _filled(value):
        return "must be an email address in quotes, e.g. \"news@example.org\""
    if len(value) <= 254 and len(value.partition("@")[0]) <= 64 and _PLAIN_ADDRESS.fullmatch(value):
        return None
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as err:
        return f"is not a valid email address ({err})"
    return None


def _domain(value: Any) -> str | None:
    if _text(value) or not re.fullmatch(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}",
                                        value):
        return "must be a domain name in lower case quotes, e.g. \"bounces.example.org\""
    return None


def _web_url(value: Any) -> str | None:
    if _text(value) or not re.match(r"https?://[^/\s]+", value):
        return "must be a web address starting with https:// (or http:// for a local test)"
    return None


def _locale(value: Any) -> str | None:
    if _filled(value):
        return "must be a locale in quotes, e.g. \"nl\" or \"nl_BE\""
    try:
        parsed = Locale.parse(value.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return "is not a locale Babel knows; use a code like \"nl\", \"en\", \"de\" or \"nl_BE\""
    if str(parsed) != value:
        return f"write it as \"{parsed}\""
    return None


def _locales(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return "must be a list of locales, e.g. [\"nl\", \"en\"]"
    for item in value:
        problem = _locale(item)
        if problem:
            return f"{item!r}: {problem}"
    return None


def _timezone(value: Any) -> str | None:
    if _filled(value):
        return "must be a time zone name in quotes, e.g. \"Europe/Amsterdam\""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "is not a time zone name; use one like \"Europe/Amsterdam\""
    return None


def _completeness(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be a table of locale = \"fallback\" or \"require\""
    for locale, policy in value.items():
        problem = _locale(locale)
        if problem:
            return f"{locale!r}: {problem}"
        if policy not in COMPLETENESS_POLICIES:
            return f"{locale} = {policy!r} must be \"fallback\" or \"require\""
    return None


def _number(low: float, high: float | None = None, whole: bool = False) -> Callable[[Any], str | None]:
    kind = "a whole number" if whole else "a number"
    allowed = (int,) if whole else (int, float)
    limits = f"from {low} to {high}" if high is not None else f"of at least {low}"

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, allowed):
            return f"must be {kind} {limits}, without quotes"
        if value < low or (high is not None and value > high):
            return f"must be {kind} {limits}"
        return None

    return check


def _from_toml(root: Path, data: dict[str, Any], path: Path, text: str = "") -> Settings:
    """Settings from the parsed file; every problem of the file is reported at once."""
    r = _Reader(path, data, text)
    d = Settings(root=root)
    r.check_unknown()
    settings = Settings(root=root, **_sender_and_web(r, d), **_languages(r, d), **_paths(r, d, root),
                        **_sending(r, d), **_bounces(r, d), **_signup(r, d))
    r.raise_problems()
    return settings


def _sender_and_web(r: "_Reader", d: Settings) -> dict[str, Any]:
    return dict(
        sender_name=r.get("sender", "name", _filled, d.sender_name),
        sender_email=r.get("sender", "email", _email, d.sender_email),
        reply_to=r.get("sender", "reply_to", _email),
        organisation_name=r.get("organisation", "name", _text, ""),
        postal_address=r.get("organisation", "postal_address", _text, ""),
        website=r.get("organisation", "website", _text, ""),
        base_url=r.get("web", "base_url", _web_url, d.base_url).rstrip("/"),
        preferences_link_days=r.get("web", "preferences_link_days", _number(1, whole=True),
                                    d.preferences_link_days),
        list_id=r.get("mail", "list_id", _filled, d.list_id),
        unsubscribe_mailto=r.get("mail", "unsubscribe_mailto", _email),
    )


def _languages(r: "_Reader", d: Settings) -> dict[str, Any]:
    source = r.get("i18n", "source_locale", _locale, d.source_locale)
    locales = tuple(r.get("i18n", "locales", _locales, list(d.locales)))
    if source not in locales:
        locales = (source, *locales)
    default_locale = r.get("i18n", "default_locale", _locale, source)
    if Locale.parse(default_locale).language not in {Locale.parse(x).language for x in locales}:
        r.complain("i18n", "default_locale", f"{default_locale!r} is not among [i18n] locales "
                   f"({', '.join(locales)}); add it there or pick one of them")
    return dict(
        source_locale=source,
        locales=locales,
        default_locale=default_locale,
        timezone=r.get("i18n", "timezone", _timezone, d.timezone),
        completeness=dict(r.get("i18n", "completeness", _completeness, {})),
        i18n_wrap=r.get("i18n", "wrap", _number(0, whole=True), d.i18n_wrap),
    )


def _paths(r: "_Reader", d: Settings, root: Path) -> dict[str, Any]:
    """[paths]: each relative to the folder of postbode.toml."""
    names = ("newsletters", "templates", "locales", "subscribers", "segments", "database", "build")
    fields = {"newsletters": "newsletters_dir", "templates": "templates_dir", "locales": "locales_dir",
              "subscribers": "subscribers_dir", "segments": "segments_file"}
    paths: dict[str, Any] = {}
    for key in names:
        field_name = fields.get(key, key if key == "database" else f"{key}_dir")
        default = getattr(d, field_name)
        value = r.get("paths", key, _filled, str(default))
        paths[field_name] = value if is_database_url(value) else (root / value).resolve()
    return paths


def is_database_url(value: object) -> bool:
    """True for a database URL (postgresql://…), False for a SQLite file's path."""
    return isinstance(value, str) and "://" in value


def _sending(r: "_Reader", d: Settings) -> dict[str, Any]:
    return dict(
        transport=r.get("send", "transport", _filled, d.transport),
        rate=float(r.get("send", "rate", _number(0), d.rate)),
        concurrency=r.get("send", "concurrency", _number(1, MAX_CONCURRENCY, whole=True), None),
        hourly_quota=r.get("send", "hourly_quota", _number(0, whole=True), d.hourly_quota),
        daily_quota=r.get("send", "daily_quota", _number(0, whole=True), d.daily_quota),
    )


def _bounces(r: "_Reader", d: Settings) -> dict[str, Any]:
    return dict(
        bounce_domain=r.get("bounces", "domain", _domain),
        bounce_soft_limit=r.get("bounces", "soft_limit", _number(1, whole=True), d.bounce_soft_limit),
        bounce_soft_days=r.get("bounces", "soft_days", _number(1, whole=True), d.bounce_soft_days),
        bounce_folder=r.get("bounces", "processed_folder", _filled, d.bounce_folder),
    )


def _signup(r: "_Reader", d: Settings) -> dict[str, Any]:
    return dict(
        signup_origins=tuple(o.rstrip("/") for o in r.get("signup", "origins", _origins, [])),
        confirm_link_days=r.get("signup", "confirm_link_days", _number(1, whole=True),
                                d.confirm_link_days),
        unconfirmed_days=r.get("signup", "unconfirmed_days", _number(1, whole=True), d.unconfirmed_days),
        min_fill_seconds=float(r.get("signup", "min_fill_seconds", _number(0), d.min_fill_seconds)),
    )


def _origins(value: Any) -> str | None:
    if not isinstance(value, list) or any(_web_url(v) or v.rstrip("/").count("/") > 2 for v in value):
        return "must be a list of origins, e.g. [\"https://www.example.org\"] (scheme and host, no path)"
    return None


def _apply_env(settings: Settings, env: Mapping[str, str]) -> Settings:
    changes: dict[str, Any] = {}
    if env.get("POSTBODE_TRANSPORT"):
        changes["transport"] = env["POSTBODE_TRANSPORT"]
    if env.get("POSTBODE_BASE_URL"):
        changes["base_url"] = env["POSTBODE_BASE_URL"].rstrip("/")
    if env.get("POSTBODE_DB"):
        value = env["POSTBODE_DB"]
        changes["database"] = value if is_database_url(value) else Path(value).resolve()
    if env.get("POSTBODE_SECRET_KEY"):
        changes["secret_key"] = env["POSTBODE_SECRET_KEY"]
    if settings.concurrency is None:   # not in postbode.toml: what suits the transport
        changes["concurrency"] = default_concurrency(changes.get("transport", settings.transport))
        changes["concurrency_set"] = False
    return replace(settings, **changes)
