"""Figure values in the notation of the language the newsletter is written in (Babel, strict).

In Dutch `125.000` is one hundred and twenty-five thousand and `1.250,50` is
1250.50. A value that Dutch notation does not allow but English would
(`1250.50`, `1,250.50`) is refused with both readings, so no amount is quietly
read a thousand times too small or too large.
"""
from __future__ import annotations

from decimal import Decimal

from babel import Locale
from babel.numbers import NumberFormatError, format_decimal, parse_decimal
from pydantic_core import PydanticCustomError

SOURCE_LOCALE = "nl"   # the design's source language; build passes the configured one
OTHER_NOTATION = "en"  # the notation writers most often slip into


def parse(value: str, locale: str) -> Decimal:
    """`value` read strictly in `locale`'s notation; an error with both readings if it is not."""
    text = value.strip()
    try:
        return parse_decimal(text, locale=locale, strict=True)
    except NumberFormatError as err:
        raise PydanticCustomError("postbode", _advice(text, locale, err)) from None


def example(locale: str | None) -> str:
    """1234.50 written in `locale`'s notation (plain if none is known)."""
    return written(Decimal("1234.50"), locale) if locale else "1234.50"


def written(number: Decimal, locale: str) -> str:
    """`number` in `locale`'s notation with its decimals kept (1250.50 → "1.250,50" in nl)."""
    exponent = number.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(number, format=pattern, locale=locale, decimal_quantization=False)


def _advice(text: str, locale: str, err: NumberFormatError) -> str:
    """What is wrong with `text` in `locale`, each way it could have been meant, and how to write it."""
    language = _language(locale)
    readings = []
    other = _read(text, OTHER_NOTATION)
    if other is not None:
        readings.append(f"read as {_language(OTHER_NOTATION)} it is {other} — in {language} "
                        f"write \"{written(other, locale)}\"")
    for suggestion in err.suggestions or []:
        meant = _read(suggestion, locale)
        if meant is not None and meant != other:
            readings.append(f"read with {language} separators it could be {meant} "
                            f"(written \"{suggestion}\")")
            break
    how = (f"write it the {language} way, e.g. \"{example(locale)}\" "
           f"({_separators(locale)})")
    if not readings:
        return f"'{text}' is not a number in {language} notation — {how}"
    return f"'{text}' is not a number in {language} notation: " + "; ".join(readings) + f" — {how}"


def _read(text: str, locale: str) -> Decimal | None:
    try:
        return parse_decimal(text, locale=locale, strict=True)
    except NumberFormatError:
        return None


def _language(locale: str) -> str:
    return Locale.parse(locale).get_display_name("en") or locale


def _separators(locale: str) -> str:
    symbols = Locale.parse(locale).number_symbols.get("latn", {})
    return (f"'{symbols.get('decimal', '.')}' before the decimals, "
            f"'{symbols.get('group', ',')}' between thousands")
