"""VLC metrics on files shaped like the ones VLC 3 writes: a vlcrc (UTF-8 BOM, commented defaults,
live settings once changed) and the HTTP interface's status.xml."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoring.badinput import BadInput, is_bad_input
from scoring.metrics import vlc as m

VLCRC_DEFAULTS = """\ufeff###
###  vlc 3.0.24
###
[qt] # Qt interface
#qt-minimal-view=0
#qt-slider-colours=153;210;153;20;210;20;255;199;15;245;39;29
#qt-bgcone=1
#qt-bgcone-expands=0
#qt-max-volume=125
[core] # core program
#input-record-path=
#play-and-exit=0
#one-instance-when-started-from-file=1
#global-key-play-pause=
#key-play-pause=Space
"""


def vlcrc(tmp_path: Path, *live: str) -> str:
    path = tmp_path / "vlcrc"
    path.write_text(VLCRC_DEFAULTS + "".join(line + "\n" for line in live), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("fn", "key", "changed", "rule_key"), [
    (m.check_qt_bgcone, "qt-bgcone", "0", "expected_qt_bgcone"),
    (m.check_qt_max_volume, "qt-max-volume", "200", "expected_qt_max_volume"),
    (m.check_qt_minimal_view, "qt-minimal-view", "1", "expected_qt_minimal_view"),
    (m.check_play_and_exit, "play-and-exit", "1", "expected_play_and_exit"),
    (m.check_one_instance_when_started_from_file, "one-instance-when-started-from-file", "0",
     "expected_one_instance_when_started_from_file"),
])
def test_vlcrc_checks_score_one_only_once_the_setting_is_live(tmp_path, fn, key, changed, rule_key):
    rule = {rule_key: int(changed)}  # tasks give integers; VLC writes strings
    assert fn(vlcrc(tmp_path), rule) == 0.0  # only commented defaults: the default holds
    assert fn(vlcrc(tmp_path, f"{key}={changed}"), rule) == 1.0
    assert fn(vlcrc(tmp_path, f"{key}={changed}"), {rule_key: str(changed)}) == 1.0


def test_global_play_pause_key_counts_as_set_when_it_has_a_value(tmp_path):
    rule = {"expected_global_key_play_pause": 1}
    assert m.check_global_key_play_pause(vlcrc(tmp_path), rule) == 0.0
    assert m.check_global_key_play_pause(vlcrc(tmp_path, "global-key-play-pause=Ctrl+Alt+p"), rule) == 1.0
    assert m.check_global_key_play_pause(vlcrc(tmp_path), {"expected_global_key_play_pause": 0}) == 1.0


def test_slider_colours_match_and_blackish(tmp_path):
    dark = "qt-slider-colours=10;10;10;20;20;20;30;30;30;0;0;0"
    assert m.check_qt_slider_colours(vlcrc(tmp_path), {"type": "blackish"}) == 0.0
    assert m.check_qt_slider_colours(vlcrc(tmp_path, dark), {"type": "blackish"}) == 1.0
    assert m.check_qt_slider_colours(vlcrc(tmp_path, "qt-slider-colours=10;10;x"), {"type": "blackish"}) == 0.0
    rule = {"type": "match", "expected_qt_slider_colours": m.DEFAULT_SLIDER_COLOURS}
    assert m.check_qt_slider_colours(vlcrc(tmp_path), rule) == 1.0
    assert m.check_qt_slider_colours(vlcrc(tmp_path, dark), rule) == 0.0


def test_recordings_folder_is_the_live_setting_with_or_without_trailing_slash(tmp_path):
    rule = {"recording_file_path": "/home/user/Desktop"}
    assert m.is_vlc_recordings_folder(vlcrc(tmp_path), rule) == 0.0
    assert m.is_vlc_recordings_folder(vlcrc(tmp_path, "input-record-path=/home/user/Desktop/"), rule) == 1.0
    assert m.is_vlc_recordings_folder(vlcrc(tmp_path, "input-record-path=/home/user/Videos"), rule) == 0.0
    assert m.is_vlc_recordings_folder(vlcrc(tmp_path, "input-record-path=/home/user/a=b"),
                                      {"recording_file_path": "/home/user/a=b"}) == 1.0


def test_missing_or_binary_vlcrc_is_bad_input(tmp_path):
    binary = tmp_path / "vlcrc"
    binary.write_bytes(b"\x00\x01qt-bgcone=0")
    for path in (str(tmp_path / "absent"), str(binary), None):
        with pytest.raises(BadInput):
            m.check_qt_bgcone(path, {"expected_qt_bgcone": 0})


def test_fullscreen_means_window_size_equals_screen_size():
    assert m.is_vlc_fullscreen({"width": 1280, "height": 800}, {"width": 1280, "height": 800}) == 1.0
    assert m.is_vlc_fullscreen({"width": 489, "height": 312}, {"width": 1280, "height": 800}) == 0.0
    assert m.is_vlc_fullscreen(None, {"width": 1280, "height": 800}) == 0.0


def status_xml(tmp_path: Path, state: str, filename: str = "clip.mp4", url: str | None = None) -> str:
    meta = f"<info name='filename'>{filename}</info>" + (f"<info name='url'>{url}</info>" if url else "")
    text = (f"<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\" ?>\n<root><fullscreen>false</fullscreen>"
            f"<state>{state}</state><information><category name=\"meta\">{meta}</category>"
            "<category name='Stream 0'><info name='Type'>Video</info></category></information></root>")
    path = tmp_path / "status.xml"
    path.write_text(text)
    return str(path)


def test_is_vlc_playing_needs_state_playing_and_the_named_file(tmp_path):
    rule = {"type": "file_name", "file_name": "clip.mp4"}
    assert m.is_vlc_playing(status_xml(tmp_path, "playing"), rule) == 1.0
    assert m.is_vlc_playing(status_xml(tmp_path, "paused"), rule) == 0.0
    assert m.is_vlc_playing(status_xml(tmp_path, "stopped"), rule) == 0.0
    assert m.is_vlc_playing(status_xml(tmp_path, "playing", "other clip.mp4"), rule) == 0.0  # upstream: endswith
    assert m.is_vlc_playing(status_xml(tmp_path, "playing", "my_clip.mp4"), rule) == 0.0
    url = "https://www.youtube.com/watch?v=pgBsyTKAwLw"
    assert m.is_vlc_playing(status_xml(tmp_path, "playing", "watch", url), {"type": "url", "url": url}) == 1.0
    with pytest.raises(ValueError):
        m.is_vlc_playing(status_xml(tmp_path, "playing"), {"type": "title"})


def test_is_vlc_playing_on_a_non_status_file_is_bad_input(tmp_path):
    junk = tmp_path / "status.xml"
    junk.write_text("<html>401 Unauthorized</html>")
    with pytest.raises(Exception) as err:
        m.is_vlc_playing(str(junk), {"type": "file_name", "file_name": "clip.mp4"})
    assert is_bad_input(err.value)
    junk.write_text("not xml <")
    with pytest.raises(Exception) as err:
        m.is_vlc_playing(str(junk), {"type": "file_name", "file_name": "clip.mp4"})
    assert is_bad_input(err.value)
