"""Plural forms from CLDR (Babel's data), written the way gettext headers need them.

Babel's own `get_plural` table predates CLDR in places (Arabic's forms 4 and 5
are swapped, Welsh has five forms); the header of a new catalog comes from the
CLDR rules instead, in CLDR's order (zero, one, two, few, many, other), keeping
only the forms a whole number can take: counts in a mail are whole numbers, so
a form only fractions reach (Russian's 'other') would be one more string to
translate that no reader ever sees. This is the order Weblate and GNU use.
"""
from __future__ import annotations

import gettext
import re
from dataclasses import dataclass
from typing import Callable

from babel import Locale
from babel.plural import PluralRule, to_gettext

CHECKED = range(0, 1001)  # two expressions agreeing on 0–1000 agree on every count a mail shows

CATEGORIES = ("zero", "one", "two", "few", "many", "other")
HEADER = re.compile(r"nplurals\s*=\s*(\d+)\s*;\s*plural\s*=\s*(.+?);?\s*$")


@dataclass(frozen=True)
class PluralForms:
    count: int
    expression: str

    @property
    def header(self) -> str:
        return f"nplurals={self.count}; plural={self.expression};"


def cldr_plural_forms(locale: Locale) -> PluralForms:
    """The Plural-Forms of a language from CLDR: whole-number categories in CLDR's order."""
    rule = locale.plural_form
    reached = {rule(n) for n in CHECKED}
    kept = {tag: text for tag, text in rule.rules.items() if tag in reached}
    if "other" not in reached and kept:
        # The last form whole numbers reach takes 'other''s place as the default branch.
        kept.pop([tag for tag in CATEGORIES if tag in kept][-1])
    header = to_gettext(PluralRule(kept))
    match = HEADER.match(header)
    assert match is not None, header
    count = len([tag for tag in CATEGORIES if tag in reached])
    # CLDR's operands for a whole number: i = n, and no fraction digits or exponent.
    expression = re.sub(r"\b[vwfte c]\b".replace(" ", ""), "0", match.group(2))
    return PluralForms(count, expression)


def evaluator(expression: str) -> Callable[[int], int]:
    """A Python function for a C plural expression (ValueError when it is not one)."""
    return gettext.c2py(expression)


def same_forms(expression: str, count: int, expected: PluralForms) -> bool:
    """True when a header chooses the same form as CLDR for every count from 0 to 1000."""
    if count != expected.count:
        return False
    given, wanted = evaluator(expression), evaluator(expected.expression)
    return all(given(n) == wanted(n) for n in CHECKED)


def first_difference(expression: str, expected: PluralForms) -> tuple[int, int, int] | None:
    """(count, form the header picks, form CLDR picks) for the first count where they differ."""
    given, wanted = evaluator(expression), evaluator(expected.expression)
    for n in CHECKED:
        if given(n) != wanted(n):
            return n, given(n), wanted(n)
    return None
