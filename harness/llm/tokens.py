"""Cheap token estimates, made before a request is sent so token/min limits can be respected.

Text: chars/4 (OpenAI's rule of thumb), or tiktoken when the providers file asks for it and it
is installed. Images: OpenAI's tile formula from the image size read out of the PNG header of a
data URL (no decoding). Estimates are corrected from the response's usage afterwards.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Callable, Iterable
from typing import Any

from harness.llm.types import Message

# Per-message framing overhead in OpenAI chat formats (role, separators).
_PER_MESSAGE = 4
_LOW_DETAIL = 85
_PER_TILE = 170
# An image we cannot size (remote URL, JPEG) is priced as a 1920x1080 screenshot: 6 tiles.
_UNKNOWN_IMAGE_TOKENS = _LOW_DETAIL + 6 * _PER_TILE


def chars_estimate(text: str) -> int:
    return (len(text) + 3) // 4


_text_counter: Callable[[str], int] = chars_estimate


def use_tiktoken(encoding: str = "o200k_base") -> bool:
    """Switch text counting to tiktoken if installed and its encoding is available locally."""
    global _text_counter
    try:
        import tiktoken

        enc = tiktoken.get_encoding(encoding)
    except Exception:  # not installed or encoding not cached: keep chars/4
        return False
    _text_counter = lambda text: len(enc.encode(text, disallowed_special=()))  # noqa: E731
    return True


def text_tokens(text: str) -> int:
    return _text_counter(text)


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None if `data` is not a PNG header."""
    if len(data) >= 24 and data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return None


def image_tokens(width: int, height: int, detail: str = "auto") -> int:
    """OpenAI's formula: fit in 2048x2048, shortest side to 768, 170 per 512px tile + 85."""
    if detail == "low":
        return _LOW_DETAIL
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return _LOW_DETAIL + _PER_TILE * tiles


def image_url_tokens(url: str, detail: str = "auto") -> int:
    if detail == "low":
        return _LOW_DETAIL
    if url.startswith("data:") and "," in url:
        head = url.split(",", 1)[1][:44]  # 44 base64 chars = 33 bytes: enough for IHDR
        try:
            size = png_size(base64.b64decode(head + "=" * (-len(head) % 4)))
        except (binascii.Error, ValueError):
            size = None
        if size:
            return image_tokens(*size, detail=detail)
    return _UNKNOWN_IMAGE_TOKENS


def _content_tokens(content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return text_tokens(content)
    total = 0
    for part in content if isinstance(content, list) else [content]:
        if not isinstance(part, dict):
            total += text_tokens(str(part))
        elif part.get("type") == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url", "") if isinstance(image, dict) else str(image)
            detail = image.get("detail", "auto") if isinstance(image, dict) else "auto"
            total += image_url_tokens(url, detail)
        else:
            total += text_tokens(str(part.get("text", "")))
    return total


def prompt_tokens(messages: Iterable[Message]) -> int:
    total = 3  # reply priming
    for message in messages:
        total += _PER_MESSAGE + _content_tokens(message.get("content"))
    return total
