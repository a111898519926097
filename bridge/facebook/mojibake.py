"""Facebook's exports write each byte of UTF-8 as its own ``\\u00XX`` escape:
"ł" arrives as "Å\\x82". Encoding such a string as Latin-1 gives back the
bytes, which then decode as the UTF-8 they were. A string is repaired only
when that round trip is valid (every character at most U+00FF, and the
bytes real UTF-8), so text that was right already is left alone. Every
string read from an export, keys too, is repaired as it is parsed
(:mod:`bridge.facebook.jsonstream`).
"""

from __future__ import annotations


def repair(text: str) -> str:
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
