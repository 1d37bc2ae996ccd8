"""Single cells of an imported file: tags, languages by name, numbers in the file's notation."""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Iterable

from babel import Locale
from babel.numbers import NumberFormatError, parse_decimal

from postbode.audience.segments import parse_locale

_SPACES = re.compile(r"\s+")
_TAG_SEPARATORS = str.maketrans({";": ",", "|": ","})
# The languages whose names a file may use for a person's language.
NAME_LANGUAGES = ("nl", "en")
# Notations a number column may be written in: the source language's and English.
NUMBER_STYLES = ("nl", "en")
_MONEY = re.compile(r"^\s*(?:€|EUR|eur)?\s*|\s*(?:€|EUR|eur)?\s*$")


def clean_tags(cell: str) -> set[str]:
    """Tags from `"Donateur","Gala 2018"` (Mailchimp), `a, b` or `a;b|c`: lower-case, single spaces."""
    return set(_tags_of(cell))


@lru_cache(maxsize=4096)  # a file repeats the same few tag cells on thousands of rows
def _tags_of(cell: str) -> frozenset[str]:
    text = cell.translate(_TAG_SEPARATORS)
    if '"' in text:
        (parts,) = csv.reader([text], skipinitialspace=True)
    else:  # the common case, without csv's cost
        parts = text.split(",")
    tags = (_SPACES.sub(" ", part.strip().strip('"').strip()).lower() for part in parts)
    return frozenset(tag for tag in tags if tag)


@lru_cache(maxsize=1)
def _language_names() -> dict[str, str]:
    """Language name (Dutch or English, lower-case) → locale code, from Babel's CLDR data."""
    names: dict[str, str] = {}
    for language in NAME_LANGUAGES:
        for code, name in Locale(language).languages.items():
            names.setdefault(name.lower(), code)
    return names


@lru_cache(maxsize=4096)  # a file holds a few languages, each written thousands of times
def language(cell: str) -> str | None:
    """A locale from a code (`nl-BE`) or a language name (`Nederlands`, `Frans`, `Dutch`); None if neither."""
    text = cell.strip()
    code = _language_names().get(_SPACES.sub(" ", text).lower())
    return parse_locale(code if code is not None else text)


def _money(text: str) -> str:
    """The number in a cell without a euro sign or EUR around it and without spaces."""
    return _MONEY.sub("", text).replace(" ", "").replace("\u00a0", "")


def _reads(text: str, style: str) -> Decimal | None:
    try:
        return parse_decimal(text, locale=style, strict=True)
    except NumberFormatError:
        return None


@dataclass
class NumberStyle:
    """The notation of a file's number columns, and how it was decided."""

    locale: str
    evidence: str

    def label(self) -> str:
        name = Locale.parse(self.locale).get_display_name("en")
        return f"{name} ({self.locale}: {_example(self.locale)}), {self.evidence}"


def _example(locale: str) -> str:
    symbols = Locale.parse(locale).number_symbols.get("latn", {})
    return f"1{symbols.get('group', ',')}250{symbols.get('decimal', '.')}50"


def detect_style(values: Iterable[str], source_locale: str) -> NumberStyle:
    """The notation most values of the file's number columns can only be read in.

    A value like `1.000` reads in both notations (1000 or 1) and decides nothing; `1.250,50`
    is Dutch only and `1250.50` English only. With no deciding value, the source language.
    """
    source = Locale.parse(source_locale).language
    styles = tuple(dict.fromkeys((source, *NUMBER_STYLES)))
    only: dict[str, int] = dict.fromkeys(styles, 0)
    for value in values:
        text = _money(value)
        if not text:
            continue
        readable = [s for s in styles if _reads(text, s) is not None]
        if len(readable) == 1:
            only[readable[0]] += 1
    best = max(styles, key=lambda s: only[s])
    if only[best] == 0:
        return NumberStyle(source, "the source language (no value in the file decides)")
    others = sum(n for s, n in only.items() if s != best)
    note = f", {others} in another" if others else ""
    return NumberStyle(best, f"detected from {only[best]} value(s) only readable that way{note}")


def read_number(value: str, style: str) -> Decimal | str:
    """The number in `style`'s notation, or the message saying why it is not one."""
    from postbode.content.numbers import parse  # the newsletters' own rule, with its advice
    from pydantic_core import PydanticCustomError

    try:
        return parse(_money(value), style)
    except PydanticCustomError as err:
        return err.message()
