"""Videos made safe to carry over, without re-encoding them (Hearth has no
video codec, and Pillow reads none).

An MP4 (ISO base media file, as Facebook exports its videos) is a tree of
boxes: the pictures and sound in ``mdat``, the tables that find them in
``moov``, and beside them boxes that only describe: ``udta`` (where phones
put the place a video was taken, ``©xyz``, and the camera's make and
model), ``meta`` (iTunes-style and XMP metadata) and ``uuid`` (XMP and
vendors' own blobs). Each of those is blanked in place: its type becomes
``free`` and its bytes zeros, which every player skips. Nothing moves, so
the sample tables, which point into ``mdat`` by absolute offset, stay
right. The times the file was made (in ``mvhd``, ``tkhd`` and ``mdhd``)
are zeroed too. A file whose boxes do not add up is refused, not guessed
at. Pure.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from bots.base.errors import InputError

# Boxes that only hold other boxes, down to the ones named below.
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"mvex", b"moof"}
_CONTAINERS |= {b"traf", b"mfra", b"sinf", b"schi"}
# Boxes that describe rather than play: blanked wherever they are.
_DESCRIBING = {b"udta", b"meta", b"uuid", b"XMP_", b"ilst", b"cprt", b"kywd", b"loci"}
# Full boxes whose first fields are the creation and modification times.
_TIMED = {b"mvhd", b"tkhd", b"mdhd"}
FREE = b"free"
# Containers in a real file nest five deep at most (moov, trak, mdia, minf,
# stbl); a file nesting deeper is refused rather than followed down.
MAX_DEPTH = 16


@dataclass(frozen=True)
class CleanVideo:
    data: bytes
    blanked: int  # describing boxes blanked
    mimetype: str = "video/mp4"


def clean_video(original: bytes, what: str) -> CleanVideo:
    """*original* with every describing box blanked and its times zeroed;
    *what* names it in errors."""
    if original[4:8] != b"ftyp":
        raise InputError(f"{what}: not an MP4 video (it does not start with an 'ftyp' box)")
    data = bytearray(original)
    boxes = _boxes(data, 0, len(data), what)
    if not any(kind == b"moov" for kind, _, _, _ in boxes):
        raise InputError(f"{what}: not a whole MP4 video (no 'moov' box)")
    blanked = _clean(data, boxes, what)
    return CleanVideo(bytes(data), blanked)


def _boxes(data: bytearray, start: int, end: int, what: str) -> list[tuple[bytes, int, int, int]]:
    """(type, box start, payload start, box end) of each box in [start, end)."""
    out = []
    at = start
    while at < end:
        if end - at < 8:
            raise InputError(f"{what}: a damaged MP4 video ({end - at} stray bytes at {at})")
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if end - at < 16:
                raise InputError(f"{what}: a damaged MP4 video (a box cut short at {at})")
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        elif size == 0:
            size = end - at  # the last box runs to the end
        if size < header or at + size > end:
            raise InputError(f"{what}: a damaged MP4 video (a box of {size} bytes at {at})")
        out.append((bytes(kind), at, at + header, at + size))
        at += size
    return out


def _clean(
    data: bytearray, boxes: list[tuple[bytes, int, int, int]], what: str, depth: int = 1
) -> int:
    if depth > MAX_DEPTH:
        raise InputError(f"{what}: boxes nested more than {MAX_DEPTH} deep, as no video is")
    blanked = 0
    for kind, start, payload, end in boxes:
        if kind in _DESCRIBING:
            data[start + 4 : start + 8] = FREE
            data[payload:end] = bytes(end - payload)
            blanked += 1
        elif kind in _TIMED:
            _zero_times(data, payload, end, what)
        elif kind in _CONTAINERS:
            blanked += _clean(data, _boxes(data, payload, end, what), what, depth + 1)
    return blanked


def _zero_times(data: bytearray, payload: int, end: int, what: str) -> None:
    # version (1 byte) and flags (3), then two times of 4 bytes, or of 8 in version 1.
    width = 8 if data[payload] == 1 else 4
    if end - payload < 4 + 2 * width:
        raise InputError(f"{what}: a damaged MP4 video (a header box cut short at {payload})")
    data[payload + 4 : payload + 4 + 2 * width] = bytes(2 * width)
