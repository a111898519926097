"""Photos made safe to carry over: decoded and re-encoded with Pillow, so
nothing of the original file survives but its pixels. EXIF (camera, GPS,
times), XMP, IPTC and ICC data are all left behind; the picture is turned
upright first, since the orientation tag that did that goes too.

Re-encoding rather than deleting tags: metadata hides in more places than
a list of tags covers, and a re-encoded file cannot carry any of it.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from bots.base.errors import InputError

# A photo in a group is at most a few tens of megapixels; a file claiming
# more is a decompression bomb.
MAX_PIXELS = 60_000_000


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    mimetype: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return ".png" if self.mimetype == "image/png" else ".jpg"


def clean_image(source: IO[bytes], what: str) -> CleanImage:
    """*source*'s pixels in a fresh JPEG (or PNG, where it has transparency);
    *what* names it in errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as original:
                width, height = original.size
                if width * height > MAX_PIXELS:
                    raise InputError(f"{what}: {width}×{height} pixels is more than a photo has")
                upright = ImageOps.exif_transpose(original)
                upright.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InputError(f"{what}: not a picture that can be read ({exc})") from None
    except Image.DecompressionBombWarning:
        raise InputError(f"{what}: too many pixels for a photo (a decompression bomb?)") from None
    alpha = upright.mode in ("RGBA", "LA") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    # A new image from the pixels alone: no info dict, no profile, no tags.
    mode = "RGBA" if alpha else "RGB"
    pixels = Image.new(mode, upright.size)
    pixels.paste(upright.convert(mode))
    out = io.BytesIO()
    if alpha:
        pixels.save(out, "PNG", optimize=True)
        mimetype = "image/png"
    else:
        pixels.save(out, "JPEG", quality=90, optimize=True)
        mimetype = "image/jpeg"
    return CleanImage(out.getvalue(), mimetype, *pixels.size)
