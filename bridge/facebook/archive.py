"""A member's export ZIP, read in place: nothing is extracted to disk.

Every entry is checked before anything is read: its path (no absolute
paths, no ``..``), its size and how far it claims to expand (a ZIP bomb
claims a small file and expands a thousandfold), and that no two entries
share their compressed bytes (an overlapping ZIP bomb). Reading is
bounded too: an entry yields at most the size its header declares, and
Python's ``zipfile`` checks the CRC, so an entry that lies about its size
fails instead of filling memory. JSON is streamed within the bounds of
:mod:`bridge.facebook.jsonstream`, never held whole.
"""

from __future__ import annotations

import itertools
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import ijson

from bots.base.errors import InputError
from bridge.facebook.jsonstream import Bounds, NotFound, Refused, list_items, value_at

# Where the groups folder sits, newest layout first.
LAYOUTS = (
    "your_facebook_activity/",
    "your_activity_across_facebook/",
    "personal_information/profile_information/your_facebook_activity/",
    "",
)
POSTS_FILES = ("group_posts_and_comments.json", "your_posts_in_groups.json")
COMMENTS_FILE = "your_comments_in_groups.json"
MEMBERSHIP_FILE = "your_group_membership_activity.json"
PROFILE_FILE = "profile_information.json"


@dataclass(frozen=True)
class Limits:
    """Bounds on what one export may hold. Real exports are far inside them."""

    entries: int = 200_000
    # One JSON entry, as its header declares it. It is streamed, so this
    # bounds time and the staging database, not memory: a member with
    # tens of thousands of comments in a non-Latin script (each character
    # escaped into 12 bytes) has about 100 MB.
    json_bytes: int = 256 * 1024**2
    # The JSON entries one export is read from (profile, memberships,
    # posts and comments) together.
    export_json_bytes: int = 512 * 1024**2
    media_bytes: int = 1024**3
    total_bytes: int = 64 * 1024**3
    # How far an entry of over a megabyte may expand (JSON: about 10×).
    ratio: float = 200.0
    # Depth and size of what is read from each JSON entry.
    json: Bounds = field(default_factory=Bounds)


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return (
        name.startswith(("/", "\\"))
        or (len(name) > 1 and name[1] == ":")
        or any(part == ".." for part in path.parts)
    )


# What reading an entry's JSON can raise, besides a bound broken: the
# parser's errors, and a damaged entry's (a bad CRC, a broken stream).
_READING = (
    Refused,
    ijson.JSONError,
    UnicodeDecodeError,
    zipfile.BadZipFile,
    zlib.error,
    OSError,
    EOFError,
)


# The compression methods Python's zipfile reads (Facebook uses deflate).
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)


class Export:
    """One export ZIP. Use as a context manager."""

    def __init__(self, path: Path, limits: Limits = Limits()) -> None:
        self.path = path
        self.limits = limits
        self._json_read: dict[str, int] = {}  # entry → its size, for export_json_bytes
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise InputError(f"{path}: not a readable ZIP file ({exc})") from None
        try:
            self._check()
        except BaseException:
            self._zip.close()
            raise
        self.root, self.groups_dir = self._layout()

    def __enter__(self) -> Export:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zip.close()

    def close(self) -> None:
        self._zip.close()

    def _fail(self, why: str) -> InputError:
        return InputError(f"{self.path}: {why}")

    def _check(self) -> None:
        infos = self._zip.infolist()
        lim = self.limits
        if len(infos) > lim.entries:
            raise self._fail(f"{len(infos)} entries, more than an export holds ({lim.entries})")
        # Each entry is a local header (30 bytes and more) and its compressed
        # bytes, one after another. An entry whose bytes run into the next
        # one's shares them: the trick of a ZIP bomb that expands one small
        # stream many times over.
        spans = sorted((i.header_offset, i.header_offset + 30 + i.compress_size) for i in infos)
        if any(end > start for (_, end), (start, _) in itertools.pairwise(spans)):
            raise self._fail("its entries overlap (a ZIP bomb?); not read")
        total = 0
        for info in infos:
            if _unsafe(info.filename):
                raise self._fail(
                    f"the entry {info.filename!r} points outside the archive; "
                    "a Facebook export never does, so it is not read"
                )
            total += info.file_size
            big = lim.json_bytes if info.filename.endswith(".json") else lim.media_bytes
            if info.file_size > big:
                raise self._fail(f"{info.filename!r} is larger than an export's files can be")
            if info.file_size > 1024**2 and info.file_size > lim.ratio * max(1, info.compress_size):
                raise self._fail(
                    f"{info.filename!r} would expand {info.file_size // max(1, info.compress_size)}"
                    " times (a ZIP bomb?); not read"
                )
        if total > lim.total_bytes:
            raise self._fail("the archive would expand to more than an export can hold")

    def names(self) -> list[str]:
        return [i.filename for i in self._zip.infolist() if not i.is_dir()]

    def _layout(self) -> tuple[str, str | None]:
        """(export root, groups folder) from where the groups files are.
        The export may sit in a top folder of its own inside the ZIP."""
        names = self.names()
        for name in names:
            for layout in LAYOUTS:
                for file in (*POSTS_FILES, COMMENTS_FILE, MEMBERSHIP_FILE):
                    tail = f"{layout}groups/{file}"
                    if name == tail or name.endswith("/" + tail):
                        root = name[: len(name) - len(tail)]
                        return root, f"{root}{layout}groups/"
        if any(n.endswith(".html") for n in names):
            raise self._fail(
                "this is Facebook's HTML export. Ask for your information again with "
                "Format: JSON (Settings → Your information → Download your information)."
            )
        return "", None

    def _find(self, file: str) -> str | None:
        if self.groups_dir is None:
            return None
        name = self.groups_dir + file
        return name if name in self._zip.NameToInfo else None

    def posts_file(self) -> str | None:
        return next((n for f in POSTS_FILES if (n := self._find(f)) is not None), None)

    def comments_file(self) -> str | None:
        return self._find(COMMENTS_FILE)

    def membership_file(self) -> str | None:
        return self._find(MEMBERSHIP_FILE)

    def profile_file(self) -> str | None:
        return next((n for n in self.names() if n.endswith("/" + PROFILE_FILE)), None)

    def _open_json(self, name: str) -> IO[bytes]:
        """An entry to read JSON from, counted against the export's bound."""
        self._json_read[name] = self.size(name)
        if sum(self._json_read.values()) > self.limits.export_json_bytes:
            raise self._fail(
                f"its groups and profile files expand to more than "
                f"{self.limits.export_json_bytes // 1024**2} MiB together, more than an "
                "export holds; not read"
            )
        return self.open(name)

    def _refused(self, name: str, exc: Exception) -> InputError:
        """What went wrong reading *name*, naming the archive and the entry."""
        if isinstance(exc, Refused):
            return self._fail(f"{name!r} {exc}; not read")
        if isinstance(exc, ijson.JSONError | UnicodeDecodeError):
            return self._fail(f"{name!r} is not valid JSON ({exc.__class__.__name__})")
        return self._fail(f"{name!r} is damaged in the archive ({exc})")

    def read_value(self, name: str, key: str) -> Any:
        """The value under *key* in an entry's JSON object (strings
        repaired), None without it; bounded like one element of a list."""
        try:
            with self._open_json(name) as f:
                return value_at(f, key, self.limits.json)
        except _READING as exc:
            raise self._refused(name, exc) from None

    def read_list(self, name: str, key: str, what: str) -> Iterator[Any]:
        """The entries of the list under *key* in an entry's JSON object, one
        at a time (each repaired), never the whole file in memory: a long
        history is as cheap to read as a short one."""
        try:
            with self._open_json(name) as f:
                yield from list_items(f, key, self.limits.json)
        except NotFound:
            raise InputError(
                f"{self.where(name)}: expected Facebook's {what} (a '{key}' list); "
                "this JSON file is something else"
            ) from None
        except _READING as exc:
            raise self._refused(name, exc) from None

    def media(self, uri: str) -> str | None:
        """The entry a post's media ``uri`` (relative to the export's root)
        names, if the export holds it."""
        if _unsafe(uri):
            return None
        name = self.root + uri.removeprefix("./")
        return name if name in self._zip.NameToInfo else None

    def open(self, name: str) -> IO[bytes]:
        """A stream of one entry, never more than its declared size."""
        info = self._zip.getinfo(name)
        if info.flag_bits & 0x1:
            raise self._fail(f"{name!r} is encrypted, as no export is; not read")
        if info.compress_type not in _METHODS:
            raise self._fail(
                f"{name!r} is compressed in a way Hearth does not read "
                f"(method {info.compress_type}); not read"
            )
        return self._zip.open(name)

    def where(self, name: str) -> str:
        """How an entry is named in messages: the archive, then the entry."""
        return f"{self.path}: {name}"

    def size(self, name: str) -> int:
        return self._zip.getinfo(name).file_size

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
