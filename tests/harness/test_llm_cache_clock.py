"""The response cache's key leaves out a desktop's clock: screenshots that differ only in the
regions a provider names (the osworld top-bar clock) key the same, wherever the image sits in the
request and however an agent scaled it; any other pixel still counts."""

from __future__ import annotations

import base64
import io

import anyio
from PIL import Image, ImageDraw

from harness.llm.cache import request_hash
from harness.llm.image_key import masked_digest
from vm import providers
from vm.providers import SandboxSettings

MASK = providers.clock_regions("docker", SandboxSettings(desktop="osworld"))


def _shot(clock: str = "Dec 6  22:58", *, dot_at: tuple[int, int] | None = None, size=(1920, 1080)) -> bytes:
    img = Image.new("RGB", (1920, 1080), (60, 20, 50))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 1919, 26), fill=(0, 0, 0))  # the bar
    draw.text((940, 8), clock, fill=(255, 255, 255))
    draw.text((10, 8), "Activities", fill=(255, 255, 255))
    if dot_at:
        draw.rectangle((*dot_at, dot_at[0] + 3, dot_at[1] + 3), fill=(255, 0, 0))
    if size != img.size:
        img = img.resize(size)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _chat(png: bytes) -> dict:
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what next?"}, {"type": "image_url", "image_url": {"url": url}}]}]}


def _anthropic(png: bytes) -> dict:
    return {"model": "m", "body": {"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": base64.b64encode(png).decode()}}]}]}}


def _responses(png: bytes) -> dict:
    url = "data:image/png;base64," + base64.b64encode(png).decode()
    return {"model": "m", "body": {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": url}]}]}}


def _key(payload: dict, mask=MASK) -> str:
    return anyio.run(lambda: request_hash(payload, size_hint=10**6, mask=mask))


def test_the_osworld_clock_is_one_region_and_the_light_desktop_and_the_sim_have_none():
    assert len(MASK) == 1
    left, top, right, bottom = MASK[0]
    assert left * 1920 < 932 and right * 1920 > 1058 and top == 0 and 26 / 1080 < bottom < 30 / 1080
    assert providers.clock_regions("docker", SandboxSettings(desktop="light")) == ()
    assert providers.clock_regions("sim", SandboxSettings()) == ()


def test_screens_that_differ_only_in_the_clock_key_the_same_in_every_request_shape():
    a, b = _shot("Dec 6  22:58"), _shot("Jul 17  19:54")
    assert a != b
    for shape in (_chat, _anthropic, _responses):
        assert _key(shape(a)) == _key(shape(b)), shape.__name__
        assert _key(shape(a), mask=None) != _key(shape(b), mask=None), shape.__name__  # without: as before


def test_any_other_pixel_still_counts_even_beside_the_clock():
    base = _key(_chat(_shot()))
    for where in ((1300, 10), (10, 40), (960, 30), (1919 - 4, 1079 - 4)):  # bar, below the bar, under the clock
        assert _key(_chat(_shot(dot_at=where))) != base, where


def test_a_scaled_screenshot_is_masked_in_the_same_place():
    small_a, small_b = _shot("Dec 6  22:58", size=(1280, 720)), _shot("Jul 17  19:54", size=(1280, 720))
    assert _key(_chat(small_a)) == _key(_chat(small_b))
    assert _key(_chat(small_a)) != _key(_chat(_shot("Dec 6  22:58")))  # another size is another image


def test_what_does_not_decode_keys_by_its_bytes():
    junk = b"not an image" * 200
    assert masked_digest(junk, MASK) is None
    other = b"not an imagf" * 200
    assert _key(_chat(junk)) != _key(_chat(other))
