"""Token estimates for the size report and the per-example limit (no tokenizer dependency).

Text: 4 characters per token plus 4 per message, the usual rule of thumb for English and code
with OpenAI's tokenizers. Images: OpenAI's published formula for GPT-4o vision inputs (detail low
= 85; otherwise fit in 2048x2048, shortest side to 768, 170 per 512-pixel tile + 85). Both are
estimates: the real count is the trainer's, and `--max-example-tokens` is a flag for that reason.
"""

from __future__ import annotations

import math
import struct

PER_MESSAGE = 4
LOW_DETAIL = 85


def text_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def image_tokens(size: tuple[int, int] | None, detail: str | None) -> int:
    if detail == "low":
        return LOW_DETAIL
    w, h = size or (1024, 1024)
    if w <= 0 or h <= 0:
        return LOW_DETAIL
    scale = min(1.0, 2048 / max(w, h))
    w, h = w * scale, h * scale
    scale = min(1.0, 768 / min(w, h))
    w, h = w * scale, h * scale
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def image_size(head: bytes) -> tuple[int, int] | None:
    """Width and height from the first bytes of a PNG, JPEG or WEBP (None if unknown)."""
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return w, h
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30:
        if head[12:16] == b"VP8X":
            return 1 + int.from_bytes(head[24:27], "little"), 1 + int.from_bytes(head[27:30], "little")
        if head[12:16] == b"VP8 " and len(head) >= 30:
            w, h = struct.unpack("<HH", head[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if head[12:16] == b"VP8L" and len(head) >= 25:
            b = head[21:25]
            return 1 + (((b[1] & 0x3F) << 8) | b[0]), 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
    if head[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(head):
            if head[i] != 0xFF:
                return None
            marker, length = head[i + 1], struct.unpack(">H", head[i + 2:i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", head[i + 5:i + 9])
                return w, h
            i += 2 + length
    return None


def image_kind(head: bytes) -> str | None:
    """The MIME type the bytes really are (by magic number)."""
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None
