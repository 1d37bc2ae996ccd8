"""A .po file as text: its entries with their line numbers and exact bytes.

Babel reads a catalog into messages and forgets how the file looked. Two jobs
need the file itself: GNU msgfmt's checks that depend on it (a message
defined twice, live or obsolete) with the line to fix, and keeping every
entry a translator's tool wrote byte-identical when its meaning did not
change (Poedit and msgcat wrap at 79 columns, Babel elsewhere).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from babel.messages.pofile import unescape

KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(".*")\s*$')
STRING = re.compile(r'^(".*")\s*$')
# Flags GNU gettext's tools drop (msgcat, msgmerge): an entry without them means the same.
IGNORED_FLAGS = frozenset({"md-text"})


@dataclass
class Block:
    """One entry (or the header) of a .po file, as written."""

    text: str                 # the entry's lines, without the blank line after it
    line: int                 # 1-based line of its first line
    obsolete: bool = False
    key_line: int | None = None  # line of its msgid
    strings: dict[str, str] = field(default_factory=dict)    # msgctxt, msgid, msgstr[0], …
    previous: dict[str, str] = field(default_factory=dict)   # from the `#|` lines
    comments: dict[str, list[str]] = field(default_factory=dict)  # "." "," ":" " " → lines

    @property
    def context(self) -> str | None:
        return self.strings.get("msgctxt")

    @property
    def msgid(self) -> str | None:
        return self.strings.get("msgid")

    @property
    def references(self) -> list[str]:
        return [token for line in self.comments.get(":", []) for token in line.split()]

    def meaning(self) -> tuple:
        """What the entry says, whatever its wrapping: equal meanings may keep their bytes."""
        words = {kind: " ".join(" ".join(lines).split()) for kind, lines in self.comments.items()
                 if kind not in (",", ":")}
        flags = frozenset(f.strip() for line in self.comments.get(",", []) for f in line.split(",")) \
            - IGNORED_FLAGS
        return (self.obsolete, tuple(sorted(self.strings.items())), tuple(sorted(self.previous.items())),
                tuple(sorted(words.items())), tuple(sorted(self.references)), flags - {""})


def split_blocks(text: str) -> list[Block]:
    """The entries of a .po file, in order; blank lines separate them."""
    blocks: list[Block] = []
    lines: list[str] = []
    start = 1
    for number, line in enumerate([*text.split("\n"), ""], 1):
        if line.strip():
            if not lines:
                start = number
            lines.append(line)
        elif lines:
            blocks.append(_parse(lines, start))
            lines = []
    return blocks


def join_blocks(texts: list[str]) -> str:
    """A .po file from entry texts, as GNU gettext and Babel write it."""
    return "\n\n".join(texts) + "\n"


def _parse(lines: list[str], start: int) -> Block:
    block = Block(text="\n".join(lines), line=start)
    target: tuple[dict[str, str], str] | None = None
    for offset, raw in enumerate(lines):
        line, previous = _strip_prefixes(raw, block)
        if line is None:
            kind = raw[1:2] if raw[1:2] in (".", ",", ":") else " "
            block.comments.setdefault(kind, []).append(raw[2:].strip() if kind != " " else raw[1:].strip())
            target = None
            continue
        into = block.previous if previous else block.strings
        keyword = KEYWORD.match(line)
        if keyword:
            target = (into, keyword.group(1))
            into[keyword.group(1)] = unescape(keyword.group(2))
            if keyword.group(1) == "msgid" and not previous:
                block.key_line = start + offset
        elif (string := STRING.match(line)) and target is not None:
            target[0][target[1]] += unescape(string.group(1))
    return block


def _strip_prefixes(raw: str, block: Block) -> tuple[str | None, bool]:
    """(the line without `#~`/`#|`, whether it is a previous-text line); None for a comment."""
    line = raw
    if line.startswith("#~"):
        block.obsolete = True
        line = line[2:].lstrip()
    if line.startswith("#|"):
        return line[2:].strip(), True
    if line.startswith("#"):
        return None, False
    return line.strip(), False


def entries_of(text: str) -> Iterator[Block]:
    """The blocks that define a message (the header and comment-only blocks left out)."""
    return (b for b in split_blocks(text) if b.msgid)


def duplicates(text: str) -> list[tuple[Block, Block]]:
    """(first, again) for every message defined twice, live or obsolete — msgfmt refuses those."""
    seen: dict[tuple[str | None, str | None], Block] = {}
    found = []
    for block in entries_of(text):
        key = (block.context, block.msgid)
        if key in seen:
            found.append((seen[key], block))
        else:
            seen[key] = block
    return found


def keep_unchanged(old: str, new: str) -> str:
    """`new`, with every entry whose meaning `old` already had written exactly as in `old`."""
    kept = {block.meaning(): block.text for block in split_blocks(old)}
    return join_blocks([kept.get(block.meaning(), block.text) for block in split_blocks(new)])
