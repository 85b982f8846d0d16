"""The single-presentation Impress checks, the LibreOffice settings checks and the Impress getters,
on real files built here (python-pptx, registry XML, a fake guest)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from fake_guest import FakeGuest
from lxml import etree
from PIL import Image
from pptx import Presentation
from pptx.dml.color import RGBColor
from pptx.util import Emu
from test_scoring_getters import ctx_for, spec

from scoring.badinput import BadInput
from scoring.evaluate import NothingFound, fetch_state
from scoring.metrics.impress_settings import (
    check_auto_saving_time,
    check_left_panel,
    check_presenter_console_disable,
)
from scoring.metrics.slides_checks import (
    check_image_stretch_and_center,
    check_page_number_colors,
    check_slide_numbers_color,
    check_slide_orientation_Portrait,
    check_strikethrough,
    check_transition,
    evaluate_presentation_fill_to_rgb_distance,
)

_P = "http://schemas.openxmlformats.org/presentationml/2006/main"


def _png(colour: tuple[int, int, int] = (200, 30, 30)) -> io.BytesIO:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    buf.seek(0)
    return buf


def deck(path: Path, *, slides: int = 2, width: int | None = None, height: int | None = None, edit: Any = None) -> str:
    prs = Presentation()
    if width:
        prs.slide_width, prs.slide_height = Emu(width), Emu(height or 0)
    for i in range(slides):
        s = prs.slides.add_slide(prs.slide_layouts[1])
        s.shapes.title.text = f"Slide {i + 1}"
        s.placeholders[1].text_frame.text = "First"
        s.placeholders[1].text_frame.add_paragraph().text = "Second"
    if edit:
        edit(prs)
    prs.save(str(path))
    return str(path)


def test_portrait_when_slides_are_taller_than_wide(tmp_path: Path) -> None:
    assert check_slide_orientation_Portrait(deck(tmp_path / "p.pptx", width=6858000, height=9144000)) == 1.0
    assert check_slide_orientation_Portrait(deck(tmp_path / "l.pptx")) == 0.0


def _transition(kind: str):
    def edit(prs: Any) -> None:
        el = prs.slides[0]._element
        t = etree.SubElement(el, f"{{{_P}}}transition", spd="slow")
        etree.SubElement(t, f"{{{_P}}}{kind}")
    return edit


def test_transition_of_the_named_type_on_the_named_slide(tmp_path: Path) -> None:
    f = deck(tmp_path / "t.pptx", edit=_transition("dissolve"))
    assert check_transition(f, {"slide_idx": 0, "transition_type": "dissolve"}) == 1.0
    assert check_transition(f, {"slide_idx": 0, "transition_type": "fade"}) == 0.0
    assert check_transition(f, {"slide_idx": 1, "transition_type": "dissolve"}) == 0.0
    assert check_transition(f, {"slide_idx": 7, "transition_type": "dissolve"}) == 0.0


def _strike(value: str):
    def edit(prs: Any) -> None:
        prs.slides[0].shapes[1].text_frame.paragraphs[1].runs[0].font._rPr.set("strike", value)
    return edit


def test_strikethrough_needs_a_real_strike_not_the_attribute(tmp_path: Path) -> None:
    rules = {"slide_index_s": [0], "shape_index_s": [1], "paragraph_index_s": [1]}
    assert check_strikethrough(deck(tmp_path / "s.pptx", edit=_strike("sngStrike")), rules) == 1.0
    # LibreOffice writes strike="noStrike" on every run; upstream counted that as struck through
    assert check_strikethrough(deck(tmp_path / "n.pptx", edit=_strike("noStrike")), rules) == 0.0
    assert check_strikethrough(deck(tmp_path / "plain.pptx"), rules) == 0.0
    assert check_strikethrough(deck(tmp_path / "s2.pptx", edit=_strike("sngStrike")), {**rules, "paragraph_index_s": [5]}) == 0.0


def _backgrounds(*colours: tuple[int, int, int] | None):
    def edit(prs: Any) -> None:
        for slide, colour in zip(prs.slides, colours, strict=True):
            if colour is not None:
                slide.background.fill.solid()
                slide.background.fill.fore_color.rgb = RGBColor(*colour)
    return edit


def test_fill_distance_is_one_for_exact_colour_and_counts_unchanged_slides_as_far(tmp_path: Path) -> None:
    blue = {"rgb": [0, 0, 255], "original_rgb": [255, 255, 255]}
    assert evaluate_presentation_fill_to_rgb_distance(deck(tmp_path / "b.pptx", edit=_backgrounds((0, 0, 255), (0, 0, 255))), blue) == 1.0
    half = evaluate_presentation_fill_to_rgb_distance(deck(tmp_path / "h.pptx", edit=_backgrounds((0, 0, 255), None)), blue)
    assert half == pytest.approx(0.5)
    assert evaluate_presentation_fill_to_rgb_distance(deck(tmp_path / "w.pptx", edit=_backgrounds((255, 255, 255), (255, 255, 255))), blue) == 0.0
    near = evaluate_presentation_fill_to_rgb_distance(deck(tmp_path / "n.pptx", edit=_backgrounds((0, 0, 200), (0, 0, 200))), blue)
    assert 0.8 < near < 1.0


def _picture_slide(prs: Any, left: int, top: int, width: int, height: int) -> None:
    slide = prs.slides[0]
    slide.shapes.add_picture(_png(), Emu(left), Emu(top), Emu(width), Emu(height))


def test_image_stretched_and_centred(tmp_path: Path) -> None:
    original = deck(tmp_path / "o.pptx", slides=1, edit=lambda p: _picture_slide(p, 914400, 914400, 1828800, 914400))
    w, h = 9144000, 6858000
    good = deck(tmp_path / "g.pptx", slides=1, edit=lambda p: _picture_slide(p, 0, 0, w, h))
    off_centre = deck(tmp_path / "c.pptx", slides=1, edit=lambda p: _picture_slide(p, 914400, 0, w, h))
    assert check_image_stretch_and_center(good, original) == 1.0
    assert check_image_stretch_and_center(original, original) == 0.0
    assert check_image_stretch_and_center(off_centre, original) == 0.0


def _number_colour(rgb: tuple[int, int, int] | None):
    def edit(prs: Any) -> None:
        prs.slides[0].shapes.add_textbox(0, 0, 914400, 457200).text_frame.text = "1"
        master = prs.slide_masters[0]
        ph = next(p for p in master.placeholders if p.placeholder_format.type == 13)  # slide number
        ph.text_frame.text = "<number>"
        if rgb:
            ph.text_frame.paragraphs[0].font.color.rgb = RGBColor(*rgb)
    return edit


def test_slide_number_colour_red_in_the_master(tmp_path: Path) -> None:
    assert check_slide_numbers_color(deck(tmp_path / "r.pptx", edit=_number_colour((255, 0, 0)))) == 1.0
    assert check_slide_numbers_color(deck(tmp_path / "b.pptx", edit=_number_colour((0, 0, 255)))) == 0.0
    assert check_slide_numbers_color(deck(tmp_path / "none.pptx")) == 0.0  # no slide shows a number


def _master_colours(path: str, colours: list[str]) -> str:
    """Append solid sRGB fills to slide master 1 (the check reads the second to last)."""
    src = Path(path)
    out = src.with_name("m_" + src.name)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "ppt/slideMasters/slideMaster1.xml":
                fills = "".join(f'<a:solidFill xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
                                f'<a:srgbClr val="{c}"/></a:solidFill>' for c in colours)
                data = data.replace(b"</p:sldMaster>", f"<p:extra>{fills}</p:extra></p:sldMaster>".encode())
            zout.writestr(item, data)
    return str(out)


def test_page_number_colour_reads_the_hex_from_its_start(tmp_path: Path) -> None:
    base = deck(tmp_path / "d.pptx")
    assert check_page_number_colors(_master_colours(base, ["0000FF", "000000"]), {"color": "blue"}) == 1.0  # upstream: 0
    assert check_page_number_colors(_master_colours(base, ["C9211E", "000000"]), {"color": "red"}) == 1.0
    assert check_page_number_colors(_master_colours(base, ["C9211E", "000000"]), {"color": "green"}) == 0.0
    assert check_page_number_colors(_master_colours(base, ["202020", "FFFFFF"]), {"color": "black"}) == 1.0


def _xcu(tmp_path: Path, items: str) -> str:
    path = tmp_path / "registrymodifications.xcu"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
                    'xmlns:xs="http://www.w3.org/2001/XMLSchema">' + items + "</oor:items>")
    return str(path)


def _item(path: str, prop: str, value: str) -> str:
    return f'<item oor:path="{path}"><prop oor:name="{prop}" oor:op="fuse"><value>{value}</value></prop></item>'


def test_presenter_console_and_autosave_interval_from_the_registry(tmp_path: Path) -> None:
    console = "/org.openoffice.Office.Impress/Misc/Start"
    save = "/org.openoffice.Office.Common/Save/Document"
    assert check_presenter_console_disable(_xcu(tmp_path, _item(console, "EnablePresenterScreen", "false"))) == 1.0
    assert check_presenter_console_disable(_xcu(tmp_path, _item(console, "EnablePresenterScreen", "true"))) == 0.0
    assert check_presenter_console_disable(_xcu(tmp_path, _item(save, "AutoSaveTimeIntervall", "3"))) == 0.0
    assert check_auto_saving_time(_xcu(tmp_path, _item(save, "AutoSaveTimeIntervall", "3")), {"minutes": 3}) == 1.0
    assert check_auto_saving_time(_xcu(tmp_path, _item(save, "AutoSaveTimeIntervall", "10")), {"minutes": 3}) == 0.0
    assert check_auto_saving_time(_xcu(tmp_path, ""), {"minutes": 3}) == 0.0
    broken = tmp_path / "broken.xcu"
    broken.write_text("<oor:items")
    with pytest.raises(BadInput):
        check_auto_saving_time(str(broken), {"minutes": 3})


def test_left_panel_is_the_slides_view_document_frame() -> None:
    shown = '<desktop-frame><frame name="x.pptx"><document-frame name="Slides View"/></frame></desktop-frame>'
    hidden = '<desktop-frame><frame name="x.pptx"><document-frame name="Normal View"/></frame></desktop-frame>'
    assert check_left_panel(shown) == 1.0
    assert check_left_panel(hidden) == 0.0


def test_corrupt_presentations_are_bad_input(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pptx"
    broken.write_bytes(b"not a zip at all")
    for call in (lambda: check_slide_orientation_Portrait(str(broken)),
                 lambda: check_transition(str(broken), {"slide_idx": 0, "transition_type": "fade"}),
                 lambda: evaluate_presentation_fill_to_rgb_distance(str(broken), {"rgb": [0, 0, 255]})):
        with pytest.raises(BadInput, match=r"broken\.pptx"):
            call()


def _with_media(path: Path) -> bytes:
    """A one-slide deck whose slide links an embedded audio clip and has a picture background."""
    prs = Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[6])
    pic = slide.shapes.add_picture(_png((10, 200, 10)), 0, 0, 914400, 914400)
    rid = pic._element.blipFill.blip.rEmbed
    bg = etree.fromstring(f'<p:bg xmlns:p="{_P}" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
                          'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                          f'<p:bgPr><a:blipFill><a:blip r:embed="{rid}"/></a:blipFill><a:effectLst/></p:bgPr></p:bg>')
    slide._element.cSld.insert(0, bg)
    slide.part.relate_to("../media/clip.mp3", "http://schemas.openxmlformats.org/officeDocument/2006/relationships/audio",
                         is_external=True)
    prs.save(str(path))
    # put the clip in the package and make the relationship internal, as Impress does for embedded media
    out = path.with_name("media_" + path.name)
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "ppt/slides/_rels/slide1.xml.rels":
                data = data.replace(b' TargetMode="External"', b"")
            zout.writestr(item, data)
        zout.writestr("ppt/media/clip.mp3", b"ID3 fake audio")
    return out.read_bytes()


async def test_audio_and_background_getters_extract_the_slides_media(tmp_path: Path) -> None:
    data = _with_media(tmp_path / "deck.pptx")
    plain = await anyio.Path(deck(tmp_path / "p.pptx")).read_bytes()
    guest = FakeGuest(files={"/home/user/deck.pptx": data, "/home/user/plain.pptx": plain})
    ctx = ctx_for(tmp_path)
    audio = await fetch_state(spec(type="audio_in_slide", ppt_file_path="/home/user/deck.pptx", slide_index=0,
                                   dest="clip.mp3"), guest, ctx)
    assert await anyio.Path(audio).read_bytes() == b"ID3 fake audio"
    image = await fetch_state(spec(type="background_image_in_slide", ppt_file_path="/home/user/deck.pptx",
                                   slide_index=0, dest="bg.png"), guest, ctx)
    assert Image.open(image).getpixel((0, 0)) == (10, 200, 10)
    with pytest.raises(NothingFound):
        await fetch_state(spec(type="audio_in_slide", ppt_file_path="/home/user/plain.pptx", slide_index=0,
                               dest="none.mp3"), guest, ctx)
    with pytest.raises(NothingFound):
        await fetch_state(spec(type="background_image_in_slide", ppt_file_path="/home/user/plain.pptx",
                               slide_index=0, dest="none.png"), guest, ctx)
