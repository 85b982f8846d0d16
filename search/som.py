"""Set-of-marks: numbered boxes over the kept accessibility nodes, and `tag_i` variables for code.

As upstream: nodes come from the accessibility filter with images allowed; a node whose box is a
single colour on the screenshot is skipped (nothing to point at); the i-th drawn node is mark i
(1-based); the model may write `pyautogui.click(tag_3)` and the code is prefixed with
`tag_3=(cx, cy)` (the box centre) before it runs. We prefix only the tags the code uses (the
same behaviour, shorter recorded actions), and boxes are clipped to the screenshot.

Drawing decodes and encodes a PNG: callers on the event loop run `draw_marks` in a worker thread.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from search.a11y import A11yNode, cell, filter_nodes, text_cell, upstream_text_cell

SOM_HEADER = "index\ttag\tname\ttext"
_TAG_REF = re.compile(r"\btag_(\d+)\b")


@dataclass(frozen=True, slots=True)
class Marks:
    """The tagged screenshot, the drawn nodes (mark i = nodes[i-1]) and their table."""

    image: bytes
    nodes: list[A11yNode]
    upstream: bool = False  # osworld profile: upstream's node filter and unescaped table cells

    @property
    def boxes(self) -> list[tuple[int, int, int, int]]:
        return [(n.x, n.y, n.w, n.h) for n in self.nodes]

    def table(self) -> str:
        rows = [SOM_HEADER]
        if self.upstream:
            rows += [f"{i}\t{n.tag}\t{n.name}\t{upstream_text_cell(n.text)}" for i, n in enumerate(self.nodes, 1)]
        else:
            rows += [f"{i}\t{cell(n.tag)}\t{cell(n.name)}\t{text_cell(n.text)}" for i, n in enumerate(self.nodes, 1)]
        return "\n".join(rows)


def _font(size: int):  # -> ImageFont
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # scalable bundled font (Pillow >= 10.1 with FreeType)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def draw_marks(screenshot: bytes, xml: str | None, *, upstream: bool = False) -> Marks:
    """Draw a red box and a white-on-black index per kept node; return the PNG and the nodes."""
    from PIL import Image, ImageDraw

    image = Image.open(io.BytesIO(screenshot))
    image.load()
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    nodes = filter_nodes(xml, check_image=True, upstream=upstream) if xml and xml.strip() else []
    draw = ImageDraw.Draw(image)
    font = _font(15)
    width, height = image.size
    drawn: list[A11yNode] = []
    for node in nodes:
        x0, y0 = min(node.x, width), min(node.y, height)
        x1, y1 = min(node.x + node.w, width), min(node.y + node.h, height)
        if x1 <= x0 or y1 <= y0:
            continue  # entirely off the screenshot
        extrema = image.crop((x0, y0, x1, y1)).getextrema()
        if all(lo == hi for lo, hi in extrema):
            continue  # one colour: no visible element to mark
        index = len(drawn) + 1
        draw.rectangle((x0, y0, x1, y1), outline="red", width=1)
        label_at = (x0, y1)  # bottom-left corner, text sitting on the box's bottom edge
        draw.rectangle(draw.textbbox(label_at, str(index), font=font, anchor="lb"), fill="black")
        draw.text(label_at, str(index), font=font, anchor="lb", fill="white")
        drawn.append(node)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return Marks(image=out.getvalue(), nodes=drawn, upstream=upstream)


def tag_variables(nodes: list[A11yNode], used: set[int] | None = None) -> str:
    """`tag_i=(cx, cy)` lines for marks 1..n (or only those in `used`)."""
    lines = []
    for i, n in enumerate(nodes, 1):
        if used is None or i in used:
            cx, cy = n.center
            lines.append(f"tag_{i}=({cx}, {cy})")
    return "\n".join(lines)


def apply_tags(code: str, nodes: list[A11yNode], *, all_tags: bool = False) -> str:
    """Prefix code with the tag variables it references (unknown tags are left to fail in the guest);
    `all_tags` (osworld profile) prefixes every mark's variable, as upstream does."""
    used = None if all_tags else {int(m) for m in _TAG_REF.findall(code)}
    prefix = tag_variables(nodes, used)
    return f"{prefix}\n{code}" if prefix else code
