"""Set-of-marks: numbered boxes on the screenshot and the `tag_i` variables the code gets."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

from search.som import SOM_HEADER, apply_tags, draw_marks, tag_variables

FIXTURE = (Path(__file__).parents[1] / "fixtures" / "a11y_gedit.xml").read_text()
GREY = (200, 200, 200)


def screenshot(mode: str = "RGB") -> bytes:
    """A flat grey desktop with content only inside some nodes' boxes (the others stay one colour)."""
    img = Image.new("RGB", (1920, 1080), GREY)
    d = ImageDraw.Draw(img)
    d.rectangle((90, 45, 140, 60), fill=(20, 20, 20))  # "Open" button (78, 35, 83x34)
    d.rectangle((1870, 40, 1890, 60), fill=(0, 90, 200))  # nameless image button (1860, 35)
    d.rectangle((80, 80, 100, 90), fill=(20, 20, 20))  # "File" menu (70, 73, 40x24)
    d.rectangle((500, 500, 700, 520), fill=(0, 0, 0))  # the text view (70, 97, 1850x950)
    out = io.BytesIO()
    if mode == "P":  # an adaptive palette keeps flat areas flat (the default web palette dithers)
        img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    elif mode != "RGB":
        img = img.convert(mode)
    img.save(out, format="PNG")
    return out.getvalue()


def test_marks_are_drawn_on_a_png_of_the_same_size_for_non_uniform_boxes_only() -> None:
    marks = draw_marks(screenshot(), FIXTURE)
    out = Image.open(io.BytesIO(marks.image))
    assert out.format == "PNG" and out.size == (1920, 1080)
    # Only the boxes with something in them are marked, numbered in document order.
    assert [(n.tag, n.name, n.x, n.y) for n in marks.nodes] == [
        ("push-button", "Open", 78, 35),
        ("push-button", "", 1860, 35),
        ("menu", "File", 70, 73),
        ("text", "", 70, 97),
    ]
    rgb = out.convert("RGB")
    for n in marks.nodes:  # red outline along each box's top edge
        assert rgb.getpixel((n.x + n.w // 2, n.y)) == (255, 0, 0)
    # the index label: white-on-black at the box's bottom-left corner
    open_box = marks.nodes[0]
    label = rgb.crop((open_box.x, open_box.y + open_box.h - 12, open_box.x + 10, open_box.y + open_box.h))
    assert (0, 0, 0) in {color for _, color in label.getcolors()}
    # untouched elsewhere: the "Activities" box (flat) has no mark
    assert rgb.getpixel((50, 10)) == GREY and rgb.getpixel((0, 0)) == GREY


def test_marks_table_lists_index_tag_name_text() -> None:
    lines = draw_marks(screenshot(), FIXTURE).table().split("\n")
    assert lines[0] == SOM_HEADER == "index\ttag\tname\ttext"
    assert lines[1] == '1\tpush-button\tOpen\t""'
    assert lines[3] == '3\tmenu\tFile\t""'
    assert len(lines) == 5


def test_tag_variables_are_box_centres_and_only_used_tags_prefix_the_code() -> None:
    nodes = draw_marks(screenshot(), FIXTURE).nodes
    assert tag_variables(nodes).split("\n")[0] == "tag_1=(119, 52)"  # (78 + 83 // 2, 35 + 34 // 2)
    code = "pyautogui.click(tag_1)\ntime.sleep(0.5)\npyautogui.click(tag_3)"
    assert apply_tags(code, nodes) == f"tag_1=(119, 52)\ntag_3=(90, 85)\n{code}"
    assert apply_tags("pyautogui.click(10, 10)", nodes) == "pyautogui.click(10, 10)"


def test_no_tree_and_palette_screenshots_still_give_a_png_of_the_same_size() -> None:
    for mode in ("P", "RGBA", "L"):
        marks = draw_marks(screenshot(mode), None)
        assert marks.nodes == [] and Image.open(io.BytesIO(marks.image)).size == (1920, 1080)
    assert len(draw_marks(screenshot("P"), FIXTURE).nodes) == 4
