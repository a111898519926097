"""What the bot writes, as Markdown: rendered once into a plain ``body`` and
the HTML Element shows. Pure.

Text that members supply (display names, answers, reasons, the command they
typed) is never Markdown. :func:`md` escapes every argument that is not
itself :class:`Md`, as markupsafe does for HTML, so a display name such as
``[click](https://evil.example)`` shows as typed and links nowhere. Only the
templates the bot's own code writes are read as Markdown.

It is CommonMark as written: a single line break inside a paragraph is a
space, so the community file's texts can wrap their lines (YAML ``|``), and
a blank line starts a new paragraph. Raw HTML is shown as text (``html``
off), and :mod:`bots.framework.content` cleans the result with nh3 before
it is sent.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token

_PARSER = MarkdownIt("commonmark", {"html": False})
_PUNCTUATION = re.compile(f"([{re.escape(string.punctuation)}])")
_LINE_END = re.compile(r"\r\n|\r|\n")
_INDENT = re.compile(r"^\s+")


class Md(str):
    """Markdown the bot wrote. Joining or formatting it escapes plain strings."""

    __slots__ = ()

    def format(self, *args: Any, **kwargs: Any) -> Md:
        return Md(str.format(self, *map(_safe, args), **{k: _safe(v) for k, v in kwargs.items()}))

    def __add__(self, other: str) -> Md:
        return Md(str.__add__(self, _safe(other)))

    def __radd__(self, other: str) -> Md:
        return Md(str.__add__(_safe(other), self))

    def join(self, parts: Iterable[str]) -> Md:
        return Md(str.join(self, (_safe(p) for p in parts)))


def _safe(value: Any) -> Any:
    # Numbers keep their format specs ("{:g}"); anything else is text,
    # escaped, so no "{0.attr}" or "{0[key]}" field can reach around it.
    if isinstance(value, Md) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    return esc(str(value))


def md(template: str, *args: Any, **kwargs: Any) -> Md:
    """*template* as Markdown, with its ``{}`` fields filled by escaped text."""
    return Md(template).format(*args, **kwargs)


def esc(text: str) -> Md:
    """*text* shown exactly as typed: every ASCII punctuation mark is
    backslash-escaped (CommonMark allows it on all of them), and each line
    break (a line feed, CR LF or a lone CR) is a hard break; no indent survives,
    so no line can start a heading, list, quote or code block."""
    # CommonMark ends a line at \r too: a lone one must not start a block.
    first, *rest = _LINE_END.split(text)
    # Inline, a leading space separates the text from the template's; four
    # would start a code block at a line's start, so one is kept at most.
    lines = [_INDENT.sub(" ", first), *(line.lstrip() for line in rest)]
    return Md("\\\n".join(_PUNCTUATION.sub(r"\\\1", line) for line in lines))


def code(text: str) -> Md:
    """*text* in a code span: command names and what to type. Nothing inside
    a code span is read as Markdown; the fence is longer than any run of
    backticks in *text*."""
    flat = " ".join(text.split())
    fence = "`" * (max((len(run) for run in re.findall("`+", flat)), default=0) + 1)
    pad = " " if flat.startswith(("`", " ")) or flat.endswith(("`", " ")) else ""
    return Md(f"{fence}{pad}{flat}{pad}{fence}")


def mention(user_id: str) -> Md:
    """A link Element shows as a pill with the person's name and avatar."""
    return Md(f"[{esc(user_id)}](https://matrix.to/#/{quote(user_id, safe='@:')})")


def bullets(items: Iterable[str]) -> Md:
    """A Markdown list, one item each; plain strings are escaped."""
    return Md("\n").join(Md("- ") + item for item in items)


class Said(NamedTuple):
    body: str
    html: str


def render(text: Md) -> Said:
    """The plain body and the HTML for *text*."""
    tokens = _PARSER.parse(text)
    return Said(_Plain().render(tokens), _PARSER.renderer.render(tokens, _PARSER.options, {}))


class _Plain:
    """The plain-text twin of the HTML, for notifications and clients that
    show no HTML: headings and paragraphs as lines, lists with their marks,
    code as its text, and a link's address after its text when they differ."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.lists: list[list[int]] = []  # [next number] for ordered, [] for bullets
        self.quote = 0

    def render(self, tokens: list[Token]) -> str:
        for token in tokens:
            self.block(token)
        text = "".join(self.out)
        return re.sub(r"\n{3,}", "\n\n", text).strip()

    def start_line(self) -> None:
        if self.out and not self.out[-1].endswith("\n"):
            self.out.append("\n")

    def newline(self) -> str:
        return "\n" + "> " * self.quote

    def block(self, token: Token) -> None:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            start = token.attrs.get("start", 1)
            self.lists.append([int(start)] if kind == "ordered_list_open" else [])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.lists.pop()
            if not self.lists:
                self.out.append("\n")
        elif kind == "list_item_open":
            marks = self.lists[-1]
            mark = f"{marks[0]}. " if marks else "- "
            if marks:
                marks[0] += 1
            self.start_line()
            self.out.append("> " * self.quote + "  " * (len(self.lists) - 1) + mark)
        elif kind == "list_item_close":
            self.start_line()
        elif kind == "blockquote_open":
            self.quote += 1
        elif kind == "blockquote_close":
            self.quote -= 1
        elif kind in ("paragraph_open", "heading_open") and not token.hidden:
            self.out.append("> " * self.quote)
        elif kind in ("paragraph_close", "heading_close") and not token.hidden:
            self.out.append("\n" if self.lists else "\n\n")
        elif kind in ("fence", "code_block"):
            self.out.append(token.content.rstrip("\n") + "\n\n")
        elif kind == "hr":
            self.out.append("---\n\n")
        elif kind == "inline":
            self.inline(token.children or [])

    def inline(self, children: list[Token]) -> None:
        href: list[tuple[str, int]] = []
        for child in children:
            if child.type in ("text", "code_inline"):
                self.out.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                self.out.append(self.newline())
            elif child.type == "image":
                self.out.append(child.content)
            elif child.type == "link_open":
                href.append((str(child.attrs.get("href", "")), len(self.out)))
            elif child.type == "link_close" and href:
                url, at = href.pop()
                shown = "".join(self.out[at:])
                # A mention's pill shows the ID its address ends with.
                if shown != url and not unquote(url).endswith("/" + shown):
                    self.out.append(f" ({url})")
