"""The curriculum's markup: how a step's text is written in a module file and how every screen shows it.

One renderer for the room display, the control page and the printed module (the display receives the
same HTML over Socket.IO). The markup is CommonMark's lists, paragraphs and emphasis and nothing else
(no headings, links, code or HTML: those characters show as written), parsed by markdown-it-py:

- a blank line starts a new paragraph;
- `- ` (or `* `) starts a bullet item, `1. ` a numbered item; an item goes on over lines indented to
  its text (2 spaces after `- `, 3 after `1. `); a blank line ends the list;
- `*a few words*` is emphasis, `**a few words**` strong;
- room text keeps each line as written (the display shows a line break where the file has one);
  presenter notes are prose: the lines of a paragraph flow together.

`problems()` names each place where that reading differs from how the text looks in an editor (a
sentence run into the list item above it, indentation that means nothing or something unexpected,
numbers that would show differently), so `iop curriculum check` can report it with its line.
"""
from __future__ import annotations

import functools
import re

from markdown_it import MarkdownIt
from markupsafe import Markup

KINDS = ("room", "notes")
ITEM = re.compile(r"^(?P<indent> *)(?P<marker>[-*+]|(?P<number>\d{1,9})[.)])(?P<gap> +|$)")
NO_SPACE_ITEM = re.compile(r"^ *[-+](?=[^\s\d+-])")  # "-Your name": meant as an item, shows as text
CLOSING_PUNCTUATION = (".", "!", "?", ":", ";", ")", '"', "\u201d", "\u2019")


@functools.cache
def _parser(kind: str) -> MarkdownIt:
    if kind not in KINDS:
        raise ValueError(f"unknown kind of curriculum text: {kind!r}")
    # "zero" has paragraphs and text only; lists, emphasis and line breaks are all we add.
    return MarkdownIt("zero", {"breaks": kind == "room", "html": False}).enable(["list", "emphasis", "newline"])


@functools.lru_cache(maxsize=1024)
def to_html(text: str | None, kind: str = "room") -> Markup:
    """The text as HTML (escaped; only p, ul, ol, li, em, strong and br)."""
    return Markup(_parser(kind).render(text or "").strip())


def _content_column(line: str) -> int:
    """Where an item's text starts (CommonMark: after the marker and 1-4 spaces)."""
    match = ITEM.match(line)
    if match is None:
        return 0
    gap = len(match["gap"])
    return len(match["indent"]) + len(match["marker"]) + (gap if 1 <= gap <= 4 else 1)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def problems(text: str | None, kind: str = "room") -> list[tuple[int, str]]:
    """(line number in the text, counted from 1, what is wrong and how to fix it), in line order."""
    lines = (text or "").split("\n")
    found: dict[int, str] = {}

    def note(index: int, message: str) -> None:
        found.setdefault(index, message)

    for index, line in enumerate(lines):
        if "\t" in line:
            note(index, "has a tab; indent with spaces.")
        elif NO_SPACE_ITEM.match(line):
            mark = line.strip()[0]
            note(index, f"starts with “{mark}” and no space; write “{mark} ” for a list item, or start the line "
                        "with a word.")
    tokens = _parser(kind).parse(text or "")
    items: list[tuple[int, int]] = []  # (first line, content column) of the list items open here
    for token in tokens:
        if token.type == "list_item_open":
            first = token.map[0]
            items.append((first, _content_column(lines[first])))
            if _indent(lines[first]):
                note(first, "starts a list item with spaces before its marker; lists have one level here, so "
                            "remove the spaces.")
        elif token.type == "list_item_close":
            items.pop()
        elif token.type == "ordered_list_open":
            _check_numbers(tokens, token, note)
        elif token.type == "inline" and token.map:
            _check_paragraph(lines, *token.map, items[-1] if items else None, kind, note)
    return [(index + 1, message) for index, message in sorted(found.items())]


def _check_paragraph(lines: list[str], start: int, end: int, item: tuple[int, int] | None, kind: str,
                     note) -> None:
    """The lines of one paragraph (in a list item when `item` is its first line and text column)."""
    column = item[1] if item else 0
    if start != (item[0] if item else None) and _indent(lines[start]) != column:
        note(start, _misindented(lines[start], item))
    for index in range(start + 1, end):
        line = lines[index]
        if ITEM.match(line):
            note(index, "looks like a list item but shows as part of the line above; put a blank line before "
                        "it (a numbered list that does not start at 1 always needs one).")
        elif item and _indent(line) < column:
            quoted = ITEM.sub("", lines[item[0]]).strip()[:40]
            note(index, f"follows the list item “{quoted}” with no blank line, so it shows as part of that "
                        f"item; put a blank line before it, or indent it {column} spaces to go on with the item.")
        elif _indent(line) != column:
            note(index, _misindented(line, item))
        elif kind == "room" and _runs_on(lines[index - 1], line):
            note(index - 1, "breaks a sentence in two, and the room display keeps each line as written; join "
                            "it with the next line.")


def _misindented(line: str, item: tuple[int, int] | None) -> str:
    if item:
        return (f"is indented {_indent(line)} spaces; indent it exactly {item[1]} spaces to go on with the list "
                "item above, or put a blank line before it and no spaces to start a new paragraph.")
    return f"is indented {_indent(line)} spaces; remove them (indentation does nothing in a paragraph)."


def _runs_on(line: str, following: str) -> bool:
    """A line that stops mid-sentence before one that carries on in lowercase (an editor's wrap)."""
    body = ITEM.sub("", line).rstrip()
    return bool(body) and not body.endswith(CLOSING_PUNCTUATION) and following.lstrip()[:1].islower()


def _check_numbers(tokens, opening, note) -> None:
    """A numbered list shows its numbers running on from the first: name an item written otherwise."""
    depth, expected = 0, None
    start = tokens.index(opening)
    for token in tokens[start + 1:]:
        if token.type in ("ordered_list_open", "bullet_list_open"):
            depth += 1
        elif token.type in ("ordered_list_close", "bullet_list_close"):
            if depth == 0:
                return
            depth -= 1
        elif token.type == "list_item_open" and depth == 0:
            written = int(token.info)
            if expected is not None and written != expected:
                note(token.map[0], f"is numbered {written}, but shows as {expected} (a numbered list counts on "
                                   "from its first item); renumber it.")
            expected = (expected if expected is not None else written) + 1
