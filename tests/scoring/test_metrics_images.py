"""Image metrics (GIMP family, compare_images & co) on real images drawn here with Pillow: each
metric scores 1 on the edit it asks for and 0 on a wrong one; a corrupt file scores 0 with the
reason; vm_wallpaper finds the picture GNOME's setting names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fake_guest import FakeGuest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from benchmarks.context import RunContext
from benchmarks.downloads import HostFiles
from benchmarks.schema import Task
from scoring import evaluate
from scoring.badinput import BadInput
from scoring.getters.wallpaper import picture_path
from scoring.metrics import gimp, images
from scoring.registry import check_metric
from vm.types import ExecResult


def scene(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """Three coloured shapes on a light background, asymmetric so a mirror is detectable."""
    w, h = size
    im = Image.new("RGB", size, (235, 235, 235))
    d = ImageDraw.Draw(im)
    d.rectangle([w // 16, h // 8, w * 7 // 16, h * 5 // 6], fill=(200, 40, 40))
    d.ellipse([w * 9 // 16, h // 5, w * 15 // 16, h * 3 // 4], fill=(40, 90, 200))
    d.polygon([(w * 5 // 8, h - 2), (w - 2, h - 2), (w * 13 // 16, h * 3 // 4)], fill=(40, 160, 60))
    return im


def soft(size: tuple[int, int] = (128, 96)) -> Image.Image:
    """The scene with soft edges, so a resize keeps its structure (as a photo would)."""
    return scene(size).filter(ImageFilter.GaussianBlur(1.5))


def save(tmp_path: Path, name: str, img: Image.Image, **kw) -> str:
    path = tmp_path / name
    img.save(path, **kw)
    return str(path)


@pytest.fixture
def orig(tmp_path: Path) -> str:
    return save(tmp_path, "orig.png", scene())


def test_structure_sim_accepts_a_reencoded_copy_and_rejects_another_picture(tmp_path: Path, orig: str) -> None:
    orig = save(tmp_path, "big.png", scene((128, 96)))  # JPEG's 8 px blocks need some room
    jpg = save(tmp_path, "copy.jpg", scene((128, 96)), quality=95)
    other = save(tmp_path, "other.png", scene((128, 96)).rotate(90))
    assert gimp.check_structure_sim(jpg, orig) == 1.0
    assert gimp.check_structure_sim(other, orig) == 0.0
    assert gimp.check_file_exists_and_structure_sim(jpg, orig) == 1.0
    assert gimp.check_file_exists_and_structure_sim(str(tmp_path / "missing.jpg"), orig) == 0.0


def test_structure_sim_with_threshold_resizes_and_uses_its_threshold(tmp_path: Path, orig: str) -> None:
    big = save(tmp_path, "big.png", scene((128, 96)))
    noisy = scene()
    noisy.paste((0, 0, 0), (0, 0, 40, 30))
    bad = save(tmp_path, "bad.png", noisy)
    assert gimp.check_structure_sim_with_threshold(big, orig) == 1.0
    assert gimp.check_structure_sim_with_threshold(bad, orig, ssim_threshold=0.85) == 0.0
    assert gimp.check_structure_sim_with_threshold(bad, orig, ssim_threshold=0.0) == 1.0


def test_structure_sim_resized_crops_transparent_margins(tmp_path: Path) -> None:
    orig = save(tmp_path, "soft.png", soft())
    canvas = Image.new("RGBA", (100, 80), (0, 0, 0, 0))
    canvas.paste(soft().resize((64, 48)).convert("RGBA"), (20, 30))
    padded = save(tmp_path, "padded.png", canvas)
    assert gimp.check_structure_sim_resized(padded, orig) == 1.0
    flipped = save(tmp_path, "flipped.png", soft((64, 48)).transpose(Image.Transpose.FLIP_TOP_BOTTOM))
    assert gimp.check_structure_sim_resized(flipped, orig) == 0.0
    empty = save(tmp_path, "empty.png", Image.new("RGBA", (10, 10), (0, 0, 0, 0)))
    with pytest.raises(BadInput, match="transparent"):
        gimp.check_structure_sim_resized(empty, orig)


def test_brightness_decrease_needs_darker_and_same_picture(tmp_path: Path, orig: str) -> None:
    darker = save(tmp_path, "dark.png", ImageEnhance.Brightness(scene()).enhance(0.6))
    brighter = save(tmp_path, "bright.png", ImageEnhance.Brightness(scene()).enhance(1.2))
    other = save(tmp_path, "other.png", ImageEnhance.Brightness(scene().transpose(Image.Transpose.ROTATE_180)).enhance(0.6))
    assert gimp.check_brightness_decrease_and_structure_sim(darker, orig) == 1.0
    assert gimp.check_brightness_decrease_and_structure_sim(brighter, orig) == 0.0
    assert gimp.check_brightness_decrease_and_structure_sim(other, orig) == 0.0


def test_saturation_increase(tmp_path: Path) -> None:
    hsv = np.asarray(scene().convert("HSV")).copy()
    hsv[..., 1] //= 2  # half the saturation, same hue and value
    muted = save(tmp_path, "muted.png", Image.fromarray(hsv, "HSV").convert("RGB"))
    vivid = save(tmp_path, "vivid.png", scene())
    assert gimp.check_saturation_increase_and_structure_sim(vivid, muted) == 1.0
    assert gimp.check_saturation_increase_and_structure_sim(muted, vivid) == 0.0


def test_contrast_increase(tmp_path: Path, orig: str) -> None:
    flat = save(tmp_path, "flat.png", ImageEnhance.Contrast(scene()).enhance(0.5))
    assert gimp.check_contrast_increase_and_structure_sim(orig, flat) == 1.0
    assert gimp.check_contrast_increase_and_structure_sim(flat, orig) == 0.0


def test_palette_needs_indexed_mode_and_the_same_picture(tmp_path: Path, orig: str) -> None:
    indexed = save(tmp_path, "indexed.png", scene().quantize(16))
    assert Image.open(indexed).mode == "P"
    assert gimp.check_palette_and_structure_sim(indexed, orig) == 1.0
    assert gimp.check_palette_and_structure_sim(orig, orig) == 0.0  # RGB, not indexed
    wrong = save(tmp_path, "wrong.png", scene().transpose(Image.Transpose.FLIP_LEFT_RIGHT).quantize(16))
    assert gimp.check_palette_and_structure_sim(wrong, orig) == 0.0


def test_image_mirror(tmp_path: Path, orig: str) -> None:
    mirrored = save(tmp_path, "m.png", scene().transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert gimp.check_image_mirror(mirrored, orig) == 1.0
    assert gimp.check_image_mirror(orig, orig) == 0.0


def test_compare_images_and_its_options(tmp_path: Path, orig: str) -> None:
    half = save(tmp_path, "half.png", scene((32, 24)))
    other = save(tmp_path, "other.png", Image.new("RGB", (64, 48), (10, 200, 10)))
    assert images.compare_images(orig, orig) == pytest.approx(1.0)
    assert images.compare_images(other, orig) < 0.5
    assert images.compare_images(half, orig, require_same_size=True) == 0.0
    assert images.compare_images(orig, orig, binary=True) == 1.0
    assert images.compare_images(other, orig, binary=True) == 0.0
    assert images.compare_images(orig, orig, reference_base_result=0.5) == pytest.approx(1.0)
    assert images.compare_images(other, orig, reference_base_result=0.5) == 0.0
    assert check_metric("compare_images", {"binary": True, "colour": 1}) == ["metric:compare_images[unknown option colour]"]


def test_compare_image_list_is_exact(tmp_path: Path, orig: str) -> None:
    same = save(tmp_path, "same.png", scene())
    changed = scene()
    changed.putpixel((0, 0), (0, 0, 0))
    diff = save(tmp_path, "diff.png", changed)
    assert images.compare_image_list([same, same], [orig, orig]) == 1.0
    assert images.compare_image_list([same, diff], [orig, orig]) == 0.0
    assert images.compare_image_list([same, None], [orig, orig]) == 0.0


def test_image_size_and_transparent_content(tmp_path: Path, orig: str) -> None:
    assert images.check_image_size(orig, {"width": 64, "height": 48}) == 1.0
    assert images.check_image_size(orig, {"height": 48}) == 1.0
    assert images.check_image_size(orig, {"width": 32}) == 0.0
    canvas = Image.new("RGBA", (100, 80), (0, 0, 0, 0))
    canvas.paste(scene((30, 20)).convert("RGBA"), (5, 5))
    padded = save(tmp_path, "pad.png", canvas)
    assert images.check_image_size(padded, {"width": 30, "height": 20, "ignore_transparent": True}) == 1.0
    assert images.check_image_size(padded, {"width": 30, "height": 20}) == 0.0  # upstream's precedence quirk: 1


def test_image_file_size(tmp_path: Path, orig: str) -> None:
    size = Path(orig).stat().st_size
    assert images.check_image_file_size(orig, {"max_size": size + 1}) == 1.0
    assert images.check_image_file_size(orig, {"max_size": size}) == 0.0


def test_sharper(tmp_path: Path, orig: str) -> None:
    blurred = save(tmp_path, "blur.png", scene().filter(ImageFilter.GaussianBlur(2)))
    assert images.check_sharper(orig, blurred) == 1.0
    assert images.check_sharper(blurred, orig) == 0.0


def _triangle(tmp_path: Path, name: str, cx: int, cy: int) -> str:
    im = Image.new("RGB", (100, 80), (255, 255, 255))
    ImageDraw.Draw(im).polygon([(cx - 10, cy + 8), (cx + 10, cy + 8), (cx, cy - 8)], fill=(250, 200, 0))
    im.putpixel((0, 0), (1, 2, 3))  # a stray colour: upstream would take it for the triangle
    return save(tmp_path, name, im)


def test_triangle_position(tmp_path: Path) -> None:
    assert images.check_triangle_position(_triangle(tmp_path, "mid.png", 50, 38)) == 1.0
    assert images.check_triangle_position(_triangle(tmp_path, "corner.png", 15, 15)) == 0.0


def test_textbox_on_leftside(tmp_path: Path) -> None:
    left = Image.new("RGB", (100, 40), "white")
    ImageDraw.Draw(left).rectangle([2, 10, 30, 20], fill="black")
    right = Image.new("RGB", (100, 40), "white")
    ImageDraw.Draw(right).rectangle([50, 10, 80, 20], fill="black")
    assert images.check_textbox_on_leftside(save(tmp_path, "l.png", left)) == 1.0
    assert images.check_textbox_on_leftside(save(tmp_path, "r.png", right)) == 0.0


def test_green_background_on_a_non_square_image(tmp_path: Path) -> None:
    # 90 x 40: upstream's [x, y] indexing would raise IndexError here
    mask = Image.new("RGB", (90, 40), "white")
    ImageDraw.Draw(mask).rectangle([30, 10, 60, 30], fill="black")  # the object
    good = Image.new("RGB", (90, 40), (20, 180, 30))
    ImageDraw.Draw(good).rectangle([30, 10, 60, 30], fill=(200, 0, 0))
    bad = good.copy()
    ImageDraw.Draw(bad).rectangle([80, 0, 89, 5], fill=(255, 255, 255))  # a white corner left
    tgt = save(tmp_path, "mask.png", mask)
    assert images.check_green_background(save(tmp_path, "good.png", good), tgt) == 1.0
    assert images.check_green_background(save(tmp_path, "bad.png", bad), tgt) == 0.0


def test_tiny_images_compare_without_crashing(tmp_path: Path) -> None:
    a = save(tmp_path, "a.png", Image.new("RGB", (5, 4), (9, 9, 9)))
    assert gimp.check_structure_sim(a, a) == 1.0
    assert gimp.check_image_mirror(a, a) == 1.0


def test_compare_image_text_is_reported_unsupported_with_the_reason() -> None:
    problems = check_metric("compare_image_text", {})
    assert len(problems) == 1 and "OCR model" in problems[0]


@pytest.mark.parametrize("metric", [gimp.check_structure_sim, gimp.check_image_mirror,
                                    gimp.check_palette_and_structure_sim, images.compare_images])
def test_corrupt_image_raises_a_reason_naming_the_file(tmp_path: Path, orig: str, metric) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(Path(orig).read_bytes()[:60])  # a truncated PNG
    with pytest.raises(BadInput, match=r"broken\.png"):
        metric(str(broken), orig)


@pytest.fixture
def orig_bytes(orig: str) -> bytes:
    return Path(orig).read_bytes()


@pytest.fixture
def ctx(tmp_path: Path) -> RunContext:
    return RunContext(work_root=tmp_path / "work", downloads=HostFiles(tmp_path / "cache"))


def _task(func: str, result: dict, expected: dict) -> Task:
    ev = {"func": func, "result": result, "expected": expected}
    return Task.model_validate({"id": "t", "instruction": "i", "evaluator": ev}).bind(domain="gimp")


async def test_corrupt_export_scores_zero_with_the_reason_in_the_details(ctx: RunContext, orig_bytes: bytes) -> None:
    guest = FakeGuest(files={"/home/user/out.png": b"\x89PNG\r\n\x1a\nnot really",
                             "/home/user/orig.png": orig_bytes})
    task = _task("check_image_mirror", {"type": "vm_file", "path": "/home/user/out.png", "dest": "out.png"},
                 {"type": "vm_file", "path": "/home/user/orig.png", "dest": "orig.png"})
    result = await evaluate(task, guest, ["DONE"], ctx)
    assert result.score == 0.0
    detail = result.details[0]
    assert "not a readable image" in detail["note"] and "out.png" in detail["note"]
    assert not detail.get("eval_error")  # the agent's file, not our bug


def test_wallpaper_setting_parsing() -> None:
    assert picture_path("'file:///home/user/My%20Pics/a.png'\n") == "/home/user/My Pics/a.png"
    assert picture_path("''") is None
    assert picture_path("'https://example.org/a.png'") is None


async def test_vm_wallpaper_fetches_the_picture_gsettings_names(ctx: RunContext, orig_bytes: bytes) -> None:
    data = orig_bytes

    def handler(command, shell: bool) -> ExecResult:
        assert "org.gnome.desktop.background picture-uri" in str(command)
        return ExecResult(0, "'file:///home/user/Pictures/bg.png'\n")

    guest = FakeGuest(files={"/home/user/Pictures/bg.png": data, "/home/user/gold.png": data}, handler=handler)
    task = _task("compare_images", {"type": "vm_wallpaper", "dest": "bg.png"},
                 {"type": "vm_file", "path": "/home/user/gold.png", "dest": "gold.png"})
    result = await evaluate(task, guest, ["DONE"], ctx)
    assert result.score == pytest.approx(1.0)
    missing = FakeGuest(files={"/home/user/gold.png": data}, handler=handler)
    result = await evaluate(task, missing, ["DONE"], ctx)
    assert result.score == 0.0 and "found nothing" in result.details[0]["note"]


def test_arrays_stay_uint8_for_ssim() -> None:
    # skimage infers the data range from the dtype; our helper passes 255 explicitly
    from scoring.metrics.image_io import ssim
    x = np.zeros((10, 10, 3), dtype=np.uint8)
    assert ssim(x, x) == pytest.approx(1.0)
