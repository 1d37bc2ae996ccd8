"""The embeddable sign-up form: plain HTML (no script) that posts to /subscribe."""
from __future__ import annotations

from postbode import i18n, render
from postbode.audience.segments import list_text, self_service_lists
from postbode.config import Settings
from postbode.errors import AudienceError, ConfigError

TEMPLATE = "web/snippet.html"


def snippet(settings: Settings, list_name: str | None = None, locale: str | None = None) -> str:
    """The form's HTML for one self-service list (or all of them), labelled in `locale`."""
    offered = self_service_lists(settings)
    if not offered:
        raise AudienceError(f"{settings.segments_file}: no list has self_service: true; "
                            "mark the lists people may join themselves")
    if list_name is not None:
        if list_name not in offered:
            raise AudienceError(f"{list_name!r} is not a self-service list; use one of "
                                f"{', '.join(offered)}")
        offered = {list_name: offered[list_name]}
    locale = locale or settings.default_locale
    if locale not in settings.locales:
        raise ConfigError(f"unknown locale {locale!r}; [i18n] locales has {', '.join(settings.locales)}")
    translations = i18n.load_translations(locale, settings)
    env = render.make_environment(settings, locale, translations)
    lists = [{"name": n, "consent": list_text(translations, "consent", s.consent) or n}
             for n, s in offered.items()]
    action = f"{settings.base_url}/subscribe" + (f"/{list_name}" if list_name else "")
    return env.get_template(TEMPLATE).render(
        action=action, lists=lists, locale=locale, lang=render.bcp47(locale),
        dir=i18n.direction_of(locale), single=len(lists) == 1).strip() + "\n"
