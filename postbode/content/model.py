"""The newsletter's pydantic models: what a newsletter may hold, and its text fields.

Newsletter text is data: nothing here renders or evaluates it.
"""
from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from babel.numbers import list_currencies
from pydantic import (AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints,
                      ValidationInfo, field_validator, model_validator)
from pydantic_core import PydanticCustomError

from postbode.content import numbers
from postbode.content.images import image_size
from postbode.content.paths import display, dotted, item_key, replaced, text_locs, value_at

IMAGES_FOLDER = "images"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1)]


def _custom(message: str) -> PydanticCustomError:
    return PydanticCustomError("postbode", message)


def _check_image_src(src: str, info: ValidationInfo) -> str:
    """An https URL, or a file under images/ next to the newsletter that exists."""
    if src.startswith("https://"):
        if not urlsplit(src).netloc:
            raise _custom("the URL has no host — write it as https://host/path")
        return src
    if src.startswith("http://"):
        raise _custom("use https:// — mail clients block or warn about images over plain http")
    path = PurePosixPath(src)
    if src.startswith("newsletters/"):
        raise _custom(f"write the path relative to the newsletter's folder: {src.removeprefix('newsletters/')}")
    if "://" in src or path.is_absolute() or path.parts[:1] != (IMAGES_FOLDER,) or ".." in path.parts:
        raise _custom("must be an https URL or a file under newsletters/images/, written as images/NAME.png")
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise _custom(f"'{path.suffix}' is not an image mail clients show — use PNG, JPEG or GIF")
    folder = (info.context or {}).get("folder")
    if folder is not None and not (folder / path).is_file():
        raise _custom(f"file {display(folder / path)} not found — put the image in that folder or fix the name")
    return src


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Image(Model):
    """A picture in a section; `src` is an https URL or `images/NAME` next to the newsletter."""

    src: str
    alt: Text
    credit: Text | None = None
    width: int = Field(default=600, gt=0, le=600)
    height: int | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _height_from_file(cls, data: Any, info: ValidationInfo) -> Any:
        """A local image without a height gets one from its own proportions."""
        folder = (info.context or {}).get("folder")
        if not (isinstance(data, dict) and folder is not None and data.get("height") is None):
            return data
        src, width = data.get("src"), data.get("width", 600)
        if not (isinstance(src, str) and src.startswith(IMAGES_FOLDER + "/") and isinstance(width, int)):
            return data
        size = image_size(folder / src)
        if size is None or width <= 0:
            return data
        return {**data, "height": max(1, round(width * size[1] / size[0]))}

    @field_validator("src")
    @classmethod
    def _src(cls, value: str, info: ValidationInfo) -> str:
        return _check_image_src(value, info)


class Figure(Model):
    """A key figure. `value` is a quoted decimal string; a percent is written as shown ("85" = 85 %)."""

    value: Decimal = Field(allow_inf_nan=False)
    id: Slug | None = None  # names the figure in catalogs; default: its value
    kind: Literal["number", "currency", "percent"] = "number"
    currency: str | None = Field(default=None, validate_default=True)
    label: Text
    # the value as written ("125.000"): it names the figure in catalogs, as the file does
    written: str | None = Field(default=None, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _keep_written(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("value"), str) and "written" not in data:
            return {**data, "written": data["value"]}
        return data

    @field_validator("value", mode="before")
    @classmethod
    def _quoted(cls, value: Any, info: ValidationInfo) -> Any:
        source = (info.context or {}).get("source_locale")
        if isinstance(value, int) and not isinstance(value, bool):
            raise _custom(f"quote it: value: \"{value}\" — figures are written as quoted text, "
                          "so they are shown exactly as written")
        if not isinstance(value, str):
            raise _custom(f"must be a quoted string, e.g. value: \"{numbers.example(source)}\" — "
                          "unquoted numbers are read as floats and can lose cents")
        # from a file: the writer's notation (Dutch: 125.000 is one hundred twenty-five thousand)
        return numbers.parse(value, source) if source else value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "currency" and value is None:
            raise _custom("missing — a figure of kind currency needs an ISO 4217 code, e.g. currency: EUR")
        if value is not None and kind != "currency":
            raise _custom("only a figure of kind currency has a currency — remove it or set kind: currency")
        if value is not None and value not in list_currencies():
            raise _custom(f"'{value}' is not an ISO 4217 currency code — use e.g. EUR, USD, GBP")
        return value

    @property
    def key(self) -> str:
        return item_key(self.model_dump(), "figures")

    @property
    def number(self) -> Decimal:
        """The value as Babel's formatters expect it (a percent as a fraction)."""
        return self.value / 100 if self.kind == "percent" else self.value


class Link(Model):
    url: str
    label: Text

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme == "mailto" and parts.path:
            return value
        if parts.scheme == "http":
            raise _custom(f"use https:// — readers' mail clients warn about plain http links: "
                          f"https://{value.removeprefix('http://')}")
        if parts.scheme != "https" or not parts.netloc:
            raise _custom("must be a web address starting with https:// (or a mailto: address)")
        return value


class Section(Model):
    id: Slug
    title: Text
    body: Text
    image: Image | None = None
    figures: list[Figure] = Field(default_factory=list)
    link: Link | None = None
    audience: list[Slug] = Field(default_factory=list)
    # Text shown as written: no personal fields, template-like braces allowed.
    literal: bool = False

    def visible_to(self, view: str | None) -> bool:
        """Sections without an audience are for everyone; others only for their segments' views."""
        return not self.audience or (view is not None and view in self.audience)


class Logo(Model):
    src: str
    alt: Text
    id: Slug | None = None  # names the logo in catalogs; default: its file name

    @property
    def key(self) -> str:
        return item_key(self.model_dump(), "logos")

    @field_validator("src")
    @classmethod
    def _src(cls, value: str, info: ValidationInfo) -> str:
        return _check_image_src(value, info)


class Acknowledgement(Model):
    text: Text
    funders: list[Text] = Field(default_factory=list)
    logos: list[Logo] = Field(default_factory=list)


class Newsletter(Model):
    id: Slug
    date: AwareDatetime
    subject: Text
    preheader: Text
    intro: Text
    sections: list[Section] = Field(min_length=1)
    acknowledgement: Acknowledgement | None = None
    sign_off: Text
    translator_notes: dict[str, Text] = Field(default_factory=dict)
    literal: bool = False
    # Shown in the public web archive before (or without) being sent; drafts never are.
    published: bool = False
    source_path: Path | None = Field(default=None, exclude=True)
    field_lines: dict[str, int] = Field(default_factory=dict, exclude=True, repr=False)
    # "sections.<id>.audience.<n>" → line, so a segment name can be checked against segments.yaml
    audience_lines: dict[str, int] = Field(default_factory=dict, exclude=True, repr=False)
    # text field path → line where its text begins (the line after `|` for a block)
    text_lines: dict[str, int] = Field(default_factory=dict, exclude=True, repr=False)

    @field_validator("date", mode="before")
    @classmethod
    def _date_has_time(cls, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            raise _custom("a date without time — give date, time and UTC offset, "
                          "e.g. 2018-07-12T10:00:00+02:00")
        return value

    def sections_for(self, view: str | None) -> list[Section]:
        return [s for s in self.sections if s.visible_to(view)]

    def text_fields(self) -> list[tuple[str, str]]:
        """Every translatable text as (text field path, text), in document order."""
        data = self.model_dump()
        return [(path, text) for path, loc in text_locs(data)
                if isinstance(text := value_at(data, loc), str)]

    def with_texts(self, texts: dict[str, str]) -> Newsletter:
        """A copy with the given text fields replaced (e.g. by their translations)."""
        locs = dict(text_locs(self.model_dump()))
        unknown = sorted(set(texts) - set(locs))
        if unknown:
            raise KeyError(f"no such text field: {', '.join(unknown)}")
        result: Newsletter = self
        for path, text in texts.items():
            result = replaced(result, locs[path], text)
        return result

    def error_path(self, path: str) -> str:
        """The error path (`sections[2].body`) of a text field path (`sections.<id>.body`)."""
        return dict((p, dotted(loc)) for p, loc in text_locs(self.model_dump())).get(path, path)

    def is_literal(self, path: str) -> bool:
        """Whether a text field is shown as written (`literal: true` on it or its section)."""
        if self.literal:
            return True
        section_id = path.split(".")[1] if path.startswith("sections.") else None
        return any(s.literal for s in self.sections if s.id == section_id)

    def note_for(self, path: str) -> str | None:
        """The translator note for a text field path, if the writer left one."""
        return self.translator_notes.get(path)

    def image_file(self, src: str) -> Path | None:
        """The file behind a local image `src` (None for an https URL)."""
        if src.startswith("https://") or self.source_path is None:
            return None
        return self.source_path.parent / src

