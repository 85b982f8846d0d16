"""Comparing a fork's screenshot with the one at snapshot time (vm/fork_bench.same_screen)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from vm.fork_bench import same_screen


def _png(*boxes: tuple[int, int, int, int]) -> bytes:
    image = Image.new("RGB", (1280, 800), "gray")
    for box in boxes:
        ImageDraw.Draw(image).rectangle(box, fill="white")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_the_top_bar_clock_is_set_aside_only_on_the_osworld_desktop() -> None:
    clock = _png((600, 8, 680, 24))  # the minute changed between snapshot and fork
    assert same_screen(_png(), clock, clock=True)
    assert not same_screen(_png(), clock)


def test_changes_outside_the_clock_and_caret_count() -> None:
    assert same_screen(_png(), _png((300, 300, 302, 320)))  # a caret
    assert not same_screen(_png(), _png((100, 8, 180, 24)), clock=True)  # the top bar's left: Activities
    assert not same_screen(_png(), _png((600, 8, 680, 24), (600, 300, 680, 324)), clock=True)
    assert not same_screen(_png(), _png((600, 300, 680, 324)), clock=True)
