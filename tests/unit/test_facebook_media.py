"""Photos from an export come out as pixels only: no EXIF, no GPS, no
camera, upright; unreadable or oversized pictures are refused by name."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bots.base.errors import InputError
from bridge.facebook.media import clean_image
from tests.support.facebook_exports import GPS_IFD, photo


def test_exif_and_gps_are_gone_and_the_pixels_stay() -> None:
    original = photo(color=(10, 200, 30), size=(80, 60))
    before = Image.open(io.BytesIO(original))
    assert before.getexif().get_ifd(GPS_IFD)  # the fixture really carries a position
    assert b"HearthTestCam" in original
    clean = clean_image(io.BytesIO(original), "a.jpg")
    assert clean.mimetype == "image/jpeg"
    assert (clean.width, clean.height) == (80, 60)
    after = Image.open(io.BytesIO(clean.data))
    assert dict(after.getexif()) == {}
    assert b"HearthTestCam" not in clean.data
    assert b"Exif" not in clean.data
    assert "icc_profile" not in after.info
    # Re-encoded, not copied: the same picture in new bytes.
    assert clean.data != original
    r, g, b = after.convert("RGB").getpixel((40, 30))  # type: ignore[misc]
    assert abs(r - 10) < 8
    assert abs(g - 200) < 8
    assert abs(b - 30) < 8


def test_a_rotated_photo_is_turned_upright_before_its_tag_goes() -> None:
    img = Image.new("RGB", (60, 20), (255, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    clean = clean_image(io.BytesIO(buf.getvalue()), "r.jpg")
    assert (clean.width, clean.height) == (20, 60)


def test_transparency_is_kept_as_png() -> None:
    img = Image.new("RGBA", (10, 10), (0, 0, 255, 100))
    buf = io.BytesIO()
    img.save(buf, "PNG", pnginfo=None)
    clean = clean_image(io.BytesIO(buf.getvalue()), "t.png")
    assert clean.mimetype == "image/png"
    assert Image.open(io.BytesIO(clean.data)).mode == "RGBA"


def test_what_is_not_a_picture_is_refused_by_name() -> None:
    with pytest.raises(InputError, match=r"^notes\.jpg: not a picture"):
        clean_image(io.BytesIO(b"just text"), "notes.jpg")


def test_a_decompression_bomb_is_refused() -> None:
    # A small file that claims 200 million pixels.
    img = Image.new("1", (20_000, 10_000))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    assert len(buf.getvalue()) < 200_000
    with pytest.raises(InputError, match=r"bomb|more than a photo"):
        clean_image(io.BytesIO(buf.getvalue()), "bomb.png")
