"""The personalisation markers: plain tokens that render leaves and message fills per recipient.

They are words of capitals and underscores because premailer, the HTML sanitiser
and URL attributes leave such words alone (Jinja syntax in an attribute would be
mangled). Render puts them in, checks recognises them, message replaces them.
"""
from __future__ import annotations

import re

GREETING = "__PB_GREETING__"
NAME = "__PB_NAME__"                    # only inside the greetings
UNSUBSCRIBE_URL = "__PB_UNSUBSCRIBE_URL__"
PREFERENCES_URL = "__PB_PREFERENCES_URL__"
WEB_URL = "__PB_WEB_URL__"
REASON = "__PB_REASON__"                # why this reader gets the mail: their lists' reason
FIELD_PREFIX = "__PB_FIELD_"            # + n + "__": the n-th personal field of a variant

# What the templates see as `markers.<name>`.
FOR_TEMPLATES = {
    "greeting": GREETING,
    "name": NAME,
    "unsubscribe_url": UNSUBSCRIBE_URL,
    "preferences_url": PREFERENCES_URL,
    "web_url": WEB_URL,
    "reason": REASON,
}
# The markers a variant's HTML and text are split on (NAME lives inside greetings only).
BODY = (GREETING, UNSUBSCRIBE_URL, PREFERENCES_URL, WEB_URL, REASON)

ANY = re.compile(r"__PB_[A-Z0-9_]+__")
# Anything a writer or translator could type that looks like a marker (any case, even empty):
# such text is refused, so only postbode puts markers in a mail.
SHAPED = re.compile(r"__\s*PB_[A-Za-z0-9_]*__", re.IGNORECASE)
FIELD = re.compile(re.escape(FIELD_PREFIX) + r"(\d+)__")
URL = re.compile(r"^__PB_[A-Z_]+_URL__$")
# The body markers and personal fields, as one pattern whose split keeps the markers.
SPLIT = re.compile("(" + "|".join(BODY) + "|" + re.escape(FIELD_PREFIX) + r"\d+__)")


def field(n: int) -> str:
    """The marker of the n-th personal field of a variant."""
    return f"{FIELD_PREFIX}{n}__"
