"""Content stage: a newsletter YAML file becomes a validated `Newsletter` (source language)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Image(Model):
    src: str
    alt: str
    credit: str | None = None
    width: int = 600
    height: int | None = None


class Figure(Model):
    value: Decimal
    kind: Literal["number", "currency", "percent"] = "number"
    currency: str | None = None
    label: str


class Link(Model):
    url: str
    label: str


class Section(Model):
    id: str
    title: str
    body: str
    image: Image | None = None
    figures: list[Figure] = Field(default_factory=list)
    link: Link | None = None
    audience: list[str] = Field(default_factory=list)

    def visible_to(self, view: str | None) -> bool:
        """Sections without an audience are for everyone; others only for their segments' views."""
        return not self.audience or (view is not None and view in self.audience)


class Logo(Model):
    src: str
    alt: str


class Acknowledgement(Model):
    text: str
    funders: list[str] = Field(default_factory=list)
    logos: list[Logo] = Field(default_factory=list)


class Newsletter(Model):
    id: str
    date: dt.datetime
    subject: str
    preheader: str
    intro: str
    sections: list[Section]
    acknowledgement: Acknowledgement | None = None
    sign_off: str
    translator_notes: dict[str, str] = Field(default_factory=dict)
    source_path: Path | None = Field(default=None, exclude=True)

    def sections_for(self, view: str | None) -> list[Section]:
        return [s for s in self.sections if s.visible_to(view)]


def load_newsletter(path: Path) -> Newsletter:
    """Read and validate one newsletter file; raise ContentError listing every problem."""
    raise NotImplementedError
