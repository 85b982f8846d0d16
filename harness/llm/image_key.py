"""What of a screenshot enters the response cache's key.

A desktop may draw something that changes with the wall clock and nothing else: the osworld
desktop's top-bar clock (as on OSWorld's VM). A re-run task's screenshots then differ from the
first run's in that label alone, and the cache, keyed by the exact request, would pay again from
the first minute that changed. A `ScreenMask` names such regions as fractions of the image (so a
copy an agent scaled down is masked in the same place); an inline image then enters the key by a
digest of its pixels with those regions blacked out. Images that do not decode keep the digest of
their bytes. The sandbox provider says what its desktop's regions are (vm.providers).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io

from PIL import Image, UnidentifiedImageError

# (left, top, right, bottom) as fractions of the image's width and height
Box = tuple[float, float, float, float]
ScreenMask = tuple[Box, ...]


def image_bytes(text: str) -> bytes | None:
    """The bytes of a `data:` URL or of bare base64 (Anthropic's image source), or None."""
    payload = text.partition(",")[2] if text.startswith("data:") else text
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return None


def masked_digest(data: bytes, mask: ScreenMask) -> str | None:
    """sha256 of the decoded pixels with the mask's regions blacked out; None if not an image."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            img = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    w, h = img.size
    for left, top, right, bottom in mask:
        img.paste((0, 0, 0), (int(left * w), int(top * h), max(int(left * w), round(right * w)),
                              max(int(top * h), round(bottom * h))))
    return "masked:" + hashlib.sha256(f"{w}x{h}:".encode() + img.tobytes()).hexdigest()
