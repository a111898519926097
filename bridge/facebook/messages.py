"""Review lines as the Matrix events of the archive. Pure.

Every event is the archive bot's own: an imported author appears in the
message, not as its sender. A pseudonym or a Matrix ID (shown as a link
that pings nobody) heads each message. The server therefore learns nothing
of who wrote what: that is inside the encryption, with the words.

A post is its text, then one event per photo or video. A comment goes in
its post's thread (its photos and videos too); a comment whose post could
not be placed for sure is an ordinary message, saying so. Photos are
re-encoded without their metadata (`bridge.facebook.media`), and videos
have theirs blanked (`bridge.facebook.video`). Other files would carry
theirs, so they are left out, and the message says that one was.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bridge.facebook.review import Line, MediaLine

JsonDict = dict[str, Any]
# Inside the encrypted content: which review line (and part of it) an
# event carries, for reading an interrupted import back.
IMPORT_KEY = "org.hearth.import"


def txn_id(room_id: str, line_id: str, part: int) -> str:
    """The same part of the same line into the same room: the same transaction."""
    return hashlib.sha256(f"{room_id}\x1f{line_id}\x1f{part}".encode()).hexdigest()[:32]


# What can be carried over without its metadata: photos re-encoded
# (media.py), videos with their describing boxes blanked (video.py).
CARRIED = ("photo", "video")


def carried(line: Line) -> tuple[MediaLine, ...]:
    """The line's photos and videos, in the order the export lists them."""
    return tuple(m for m in line.media if m.kind in CARRIED)


def _day(ts: int) -> str:
    d = datetime.fromtimestamp(ts, UTC)
    return f"{d.day} {d:%B %Y}"


def _author(author: str) -> tuple[str, str]:
    """(plain, HTML) of the author: a Matrix ID becomes a link to them."""
    if author.startswith("@"):
        href = html.escape(f"https://matrix.to/#/{author}", quote=True)
        return author, f'<a href="{href}">{html.escape(author)}</a>'
    return author, f"<strong>{html.escape(author)}</strong>"


def _thread(root: str | None) -> JsonDict:
    if root is None:
        return {}
    # A thread reply, with the reply fallback clients without threads show.
    return {
        "m.relates_to": {
            "rel_type": "m.thread",
            "event_id": root,
            "is_falling_back": True,
            "m.in_reply_to": {"event_id": root},
        }
    }


def text_content(line: Line, root: str | None) -> JsonDict:
    """The line's message; *root*: the event of its thread's post, if any."""
    plain_author, html_author = _author(line.author)
    if line.kind == "post":
        where = f"Facebook, {_day(line.ts)}"
    elif root is None:
        where = f"a comment on Facebook, {_day(line.ts)}; its post could not be told for sure"
    else:
        where = f"comment, {_day(line.ts)}"
    plain = [f"{plain_author} · {where}"]
    rich = [f"{html_author} · {html.escape(where)}"]
    if line.text:
        plain.append(line.text)
        rich.append(html.escape(line.text).replace("\n", "<br>"))
    for link in line.links:
        plain.append(link)
        rich.append(html.escape(link))
    others = len(line.media) - len(carried(line))
    if others:
        note = (
            f"({others} file{'s' if others > 1 else ''} left out: Hearth cannot remove "
            f"{'their' if others > 1 else 'its'} metadata)"
        )
        plain.append(note)
        rich.append(f"<em>{html.escape(note)}</em>")
    return {
        "msgtype": "m.text",
        "body": "\n\n".join(plain),
        "format": "org.matrix.custom.html",
        "formatted_body": "<br><br>".join(rich),
        # Imported mentions of members must not ping anyone.
        "m.mentions": {},
        IMPORT_KEY: {"line": line.id, "part": 0},
        **_thread(root),
    }


def photo_content(
    line: Line,
    part: int,
    file: Mapping[str, Any],
    mimetype: str,
    size: int,
    width: int,
    height: int,
    root: str | None,
) -> JsonDict:
    """Photo number *part* (from 1) of the line, uploaded encrypted as *file*
    (``url`` and the keys, as the spec's EncryptedFile)."""
    extension = ".png" if mimetype == "image/png" else ".jpg"
    return {
        "msgtype": "m.image",
        "body": f"photo-{part}{extension}",
        "file": dict(file),
        "info": {"mimetype": mimetype, "size": size, "w": width, "h": height},
        "m.mentions": {},
        IMPORT_KEY: {"line": line.id, "part": part},
        **_thread(root),
    }


def video_content(
    line: Line, part: int, file: Mapping[str, Any], mimetype: str, size: int, root: str | None
) -> JsonDict:
    """Video number *part* of the line, uploaded encrypted as *file*."""
    return {
        "msgtype": "m.video",
        "body": f"video-{part}.mp4",
        "file": dict(file),
        "info": {"mimetype": mimetype, "size": size},
        "m.mentions": {},
        IMPORT_KEY: {"line": line.id, "part": part},
        **_thread(root),
    }


def import_mark(content: Mapping[str, Any]) -> tuple[str, int] | None:
    """The (line, part) a decrypted archive event carries, if any."""
    mark = content.get(IMPORT_KEY)
    if not isinstance(mark, Mapping):
        return None
    line, part = mark.get("line"), mark.get("part")
    if isinstance(line, str) and isinstance(part, int):
        return line, part
    return None
