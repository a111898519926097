"""Videos carried over without where, when and with what they were made:
the describing boxes blanked in place, the frames untouched. Pure."""

from __future__ import annotations

import struct

import pytest

from bots.base.errors import InputError
from bridge.facebook.video import clean_video
from tests.support.facebook_exports import (
    VIDEO_CAMERA,
    VIDEO_FRAMES,
    VIDEO_GPS,
    VIDEO_MADE,
    VIDEO_XMP,
    photo,
    video,
)


def boxes(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of the boxes in data[start:end], read independently."""
    end = len(data) if end is None else end
    out = []
    while start < end:
        size, kind = struct.unpack_from(">I4s", data, start)
        out.append((kind, start, start + size))
        start += size
    return out


def child(data: bytes, path: list[bytes]) -> tuple[int, int]:
    start, end = 0, len(data)
    for kind in path:
        found = next(b for b in boxes(data, start, end) if b[0] == kind)
        start, end = found[1] + 8, found[2]
    return start, end


def test_the_place_camera_and_xmp_are_gone_and_the_frames_stay() -> None:
    original = video()
    assert VIDEO_GPS.encode() in original
    assert VIDEO_CAMERA.encode() in original
    clean = clean_video(original, "v.mp4")
    data = clean.data
    for secret in (VIDEO_GPS, VIDEO_CAMERA, VIDEO_XMP, "xmpmeta"):
        assert secret.encode() not in data
    assert clean.blanked == 2  # udta and the XMP uuid
    assert clean.mimetype == "video/mp4"
    # Nothing moved: the same size, the same boxes where they were, the
    # describing ones now 'free'; the sample table still finds the frames.
    assert len(data) == len(original)
    before, after = boxes(original), boxes(data)
    assert [b[1:] for b in before] == [b[1:] for b in after]
    assert [b[0] for b in after] == [b"ftyp", b"moov", b"free", b"mdat"]
    moov = child(data, [b"moov"])
    assert [b[0] for b in boxes(data, *moov)] == [b"mvhd", b"trak", b"free"]
    stco_start, _ = child(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco"])
    (offset,) = struct.unpack_from(">I", data, stco_start + 8)
    assert data[offset : offset + len(VIDEO_FRAMES)] == VIDEO_FRAMES


def test_the_times_it_was_made_are_zeroed() -> None:
    data = clean_video(video(), "v.mp4").data
    mvhd, _ = child(data, [b"moov", b"mvhd"])
    tkhd, _ = child(data, [b"moov", b"trak", b"tkhd"])
    mdhd, _ = child(data, [b"moov", b"trak", b"mdia", b"mdhd"])
    assert struct.unpack_from(">II", data, mvhd + 4) == (0, 0)
    assert struct.unpack_from(">II", data, tkhd + 4) == (0, 0)
    assert struct.unpack_from(">QQ", data, mdhd + 4) == (0, 0)  # version 1: 64-bit times
    assert struct.pack(">I", VIDEO_MADE) not in data


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (photo(), "not an MP4 video"),
        (video()[:300], "a damaged MP4 video"),
        (video()[:-3], "a damaged MP4 video"),
        (struct.pack(">I4s", 8, b"ftyp") + struct.pack(">I4s", 9999, b"moov"), "damaged"),
        (struct.pack(">I4s", 12, b"ftyp") + b"isom", "no 'moov' box"),
    ],
)
def test_a_file_whose_boxes_do_not_add_up_is_refused(data: bytes, said: str) -> None:
    with pytest.raises(InputError, match=said) as caught:
        clean_video(data, "media/v.mp4")
    assert str(caught.value).startswith("media/v.mp4: ")


def test_boxes_nested_deeper_than_a_video_has_are_refused() -> None:
    """Containers in containers, 5,000 deep in 40 kB: refused with a reason,
    not followed down until Python's recursion limit."""
    nested = b""
    for _ in range(5000):
        nested = struct.pack(">I4s", 8 + len(nested), b"moov") + nested
    data = struct.pack(">I4s", 16, b"ftyp") + b"isom\x00\x00\x02\x00" + nested
    with pytest.raises(InputError, match="boxes nested more than 16 deep"):
        clean_video(data, "mallory.zip: v.mp4")
    # As deep as a real file (moov/trak/mdia/minf/stbl) is read.
    assert clean_video(video(), "v.mp4").blanked > 0
