"""Facebook "Download Your Information" exports built for the tests: both
layouts and both posts file names, text in Facebook's mojibake, photos
with real EXIF and GPS, and the export's own upload IPs."""

from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

GPS_IFD = 0x8825


def mojibake(text: str) -> str:
    """How Facebook writes text: each UTF-8 byte as its own character."""
    return text.encode("utf-8").decode("latin-1")


def photo(color: tuple[int, int, int] = (200, 100, 50), size: tuple[int, int] = (64, 48)) -> bytes:
    """A JPEG carrying a camera make and a GPS position in its EXIF."""
    img = Image.new("RGB", size, color)
    exif = img.getexif()
    exif[0x010F] = "HearthTestCam"
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2], gps[3], gps[4] = "N", (51.0, 30.0, 12.5), "W", (0.0, 7.0, 40.0)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


# What a phone puts in a video: where it was taken, the camera, XMP.
VIDEO_GPS = "+52.2297+021.0122/"
VIDEO_CAMERA = "Apple iPhone 12"
VIDEO_XMP = "<x:xmpmeta><exif:GPSLatitude>52,13.78N</exif:GPSLatitude></x:xmpmeta>"
VIDEO_FRAMES = b"FRAMES-" * 200
VIDEO_MADE = 3_700_000_000  # seconds since 1904, as MP4 counts


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def video() -> bytes:
    """A small MP4 as a phone makes it: its boxes, the place, the camera and
    the time it was made, and frames that a sample table points at."""
    ftyp = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
    mvhd = _box(
        b"mvhd", b"\x00\x00\x00\x00" + struct.pack(">II", VIDEO_MADE, VIDEO_MADE) + bytes(88)
    )
    tkhd = _box(
        b"tkhd", b"\x00\x00\x00\x03" + struct.pack(">II", VIDEO_MADE, VIDEO_MADE) + bytes(72)
    )
    mdhd = _box(
        b"mdhd", b"\x01\x00\x00\x00" + struct.pack(">QQ", VIDEO_MADE, VIDEO_MADE) + bytes(12)
    )
    xyz = _box(b"\xa9xyz", struct.pack(">HH", len(VIDEO_GPS), 0) + VIDEO_GPS.encode())
    mak = _box(b"\xa9mak", struct.pack(">HH", len(VIDEO_CAMERA), 0) + VIDEO_CAMERA.encode())
    udta = _box(b"udta", xyz + mak)
    uuid = _box(b"uuid", bytes.fromhex("be7acfcb97a942e89c71999491e3afac") + VIDEO_XMP.encode())

    def build(chunk_offset: int) -> bytes:
        stco = _box(b"stco", b"\x00\x00\x00\x00" + struct.pack(">II", 1, chunk_offset))
        minf = _box(b"minf", _box(b"stbl", stco))
        trak = _box(b"trak", tkhd + _box(b"mdia", mdhd + minf))
        return ftyp + _box(b"moov", mvhd + trak + udta) + uuid

    head = build(0)
    # The sample table points at the frames, by absolute offset.
    return build(len(head) + 8) + _box(b"mdat", VIDEO_FRAMES)


@dataclass
class Post:
    ts: int
    text: str
    group: str
    media: tuple[str, ...] = ()  # uris, relative to the export's root
    link: str | None = None


@dataclass
class Comment:
    ts: int
    text: str
    group: str
    replied_to: str  # whose post or comment, as the title names them


@dataclass
class FakeExport:
    owner: str
    posts: list[Post] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    joined: list[tuple[str, int]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # uri → content
    layout: Literal["new", "old"] = "new"
    top: str = "facebook-export"
    profile: bool = True

    def _posts_json(self) -> dict[str, Any]:
        entries = []
        for p in self.posts:
            data: list[dict[str, Any]] = [{"post": mojibake(p.text)}] if p.text else []
            data.append({"update_timestamp": p.ts})
            attached: list[dict[str, Any]] = [
                {
                    "media": {
                        "uri": uri,
                        "creation_timestamp": p.ts,
                        "media_metadata": {
                            "photo_metadata": {
                                "exif_data": [{"upload_ip": "203.0.113.7", "taken_timestamp": p.ts}]
                            }
                        },
                        "title": "",
                        "description": mojibake(p.text[:20]),
                    }
                }
                for uri in p.media
            ]
            if p.link:
                attached.append({"external_context": {"url": p.link, "name": "a link"}})
            entry: dict[str, Any] = {
                "timestamp": p.ts,
                "title": mojibake(f"{self.owner} posted in {p.group}."),
                "data": data,
            }
            if attached:
                entry["attachments"] = [{"data": attached}]
            entries.append(entry)
        return {"group_posts_v2": entries}

    def _comments_json(self) -> dict[str, Any]:
        return {
            "group_comments_v2": [
                {
                    "timestamp": c.ts,
                    "title": mojibake(f"{self.owner} replied to {c.replied_to}'s post."),
                    "data": [
                        {
                            "comment": {
                                "timestamp": c.ts,
                                "comment": mojibake(c.text),
                                "author": mojibake(self.owner),
                                "group": mojibake(c.group),
                            }
                        }
                    ],
                }
                for c in self.comments
            ]
        }

    def write(self, path: Path) -> Path:
        base = f"{self.top}/" if self.top else ""
        activity = base + ("your_facebook_activity/" if self.layout == "new" else "")
        posts_name = (
            "group_posts_and_comments.json" if self.layout == "new" else "your_posts_in_groups.json"
        )
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{activity}groups/{posts_name}", json.dumps(self._posts_json()))
            z.writestr(
                f"{activity}groups/your_comments_in_groups.json", json.dumps(self._comments_json())
            )
            joined = {
                "groups_joined_v2": [
                    {"timestamp": ts, "title": "", "data": [{"name": mojibake(g)}]}
                    for g, ts in self.joined
                ]
            }
            z.writestr(f"{activity}groups/your_group_membership_activity.json", json.dumps(joined))
            if self.profile:
                profile = {"profile_v2": {"name": {"full_name": mojibake(self.owner)}}}
                z.writestr(
                    f"{base}personal_information/profile_information/profile_information.json",
                    json.dumps(profile),
                )
            for uri, content in self.files.items():
                z.writestr(base + uri, content)
        return path


# Hostile exports. A huge entry is built cheaply: each distinct block of it
# is deflated once, ending in a full flush (after which the compressor
# refers to nothing before), and its compressed bytes are repeated.

Blocks = Sequence[tuple[bytes, int]]  # (block, how many times in a row)


def _deflated(blocks: Blocks) -> tuple[bytes, int, int]:
    """(compressed bytes, CRC-32, size) of the blocks one after another."""
    out, crc, size = [], 0, 0
    for block, times in blocks:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
        out.append(packed * times)
        for _ in range(times):
            crc = zlib.crc32(block, crc)
        size += len(block) * times
    out.append(zlib.compressobj(6, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))
    return b"".join(out), crc, size


def write_zip(path: Path, entries: Mapping[str, bytes | Blocks]) -> Path:
    """A ZIP of *entries* (name → content, or blocks of it), written by
    hand so that a 256 MiB entry takes its compressed size to write."""
    local, central = bytearray(), bytearray()
    for name, content in entries.items():
        blocks: Blocks = [(content, 1)] if isinstance(content, bytes) else content
        data, crc, size = _deflated(blocks)
        raw = name.encode()
        fields = struct.pack("<HHHHHIII", 20, 0x800, 8, 0, 0x21, crc, len(data), size)
        central += struct.pack("<IH", 0x02014B50, 20) + fields
        central += struct.pack("<HHHHHII", len(raw), 0, 0, 0, 0, 0, len(local)) + raw
        local += struct.pack("<I", 0x04034B50) + fields + struct.pack("<HH", len(raw), 0)
        local += raw + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central),
                      len(local), 0)  # fmt: skip
    path.write_bytes(bytes(local + central + end))
    return path


def json_text(size: int) -> Blocks:
    """*size* bytes of words to go inside a JSON string: 1 MiB blocks that
    deflate about 100 to 1, as a real export's text does not, but within
    the 200 to 1 that the ZIP bomb check lets through."""
    line = b"".join(b"word%d " % (n * 7919 % 10007) for n in range(2000))  # no repeat within
    block = (line * (2**20 // len(line) + 1))[: 2**20]
    whole, rest = divmod(size, len(block))
    return [(block, whole), (block[:rest], 1)]


def groups_file(layout: str = "your_facebook_activity/") -> str:
    return f"facebook-export/{layout}groups/"


PROFILE_ENTRY = "facebook-export/personal_information/profile_information/profile_information.json"


def profile_json(owner: str) -> bytes:
    return json.dumps({"profile_v2": {"name": {"full_name": mojibake(owner)}}}).encode()
