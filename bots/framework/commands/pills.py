"""A command's text with Element's pills read as the Matrix IDs they link to.

Element sends a mention as a link in the formatted body and, in the plain
body, only the person's display name, which anyone can set to look like
anyone. So `!ban <pill>` is read from the formatted body: each link to
``https://matrix.to/#/@user:server`` becomes that user ID, and the rest is
the text without its markup. Pure.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import unquote

from bots.framework.ids import is_user_id

_PREFIX = "https://matrix.to/#/"


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._pill_depth = 0  # inside a pill: its text (a display name) is dropped
        self.pills = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._pill_depth:
            self._pill_depth += tag != "br"
            return
        href = dict(attrs).get("href") or ""
        if tag == "a" and href.startswith(_PREFIX):
            target = unquote(href[len(_PREFIX) :].split("?", 1)[0])
            if is_user_id(target):
                self.parts.append(target)
                self.pills += 1
                self._pill_depth = 1
                return
        if tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._pill_depth:
            self._pill_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self._pill_depth:
            self.parts.append(data)


def command_text(body: str, formatted_body: str | None) -> str:
    """The text to parse as a command: *body*, unless the formatted body
    holds a pill to a user, in which case that, with pills as user IDs."""
    if not formatted_body or _PREFIX not in formatted_body:
        return body
    reader = _Reader()
    reader.feed(formatted_body)
    reader.close()
    text = "".join(reader.parts).strip()
    return text if reader.pills and text else body
