"""VLC metrics: the player's state (status.xml from its HTTP interface), its window, and the
settings it saved in `vlcrc` (upstream's metrics/vlc.py; the media comparisons are in media.py).

vlcrc is an ini-like file VLC rewrites in full when preferences are saved: every option appears
once, commented out (`#key=default`) while it has its default value and as `key=value` once
changed. Upstream's `check_qt_*` read commented lines too; we read only live settings and fall
back to VLC's default, which gives the same answer on files VLC wrote and the right one on any other.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

from scoring.badinput import opened, read_text_bytes
from scoring.registry import metric

# VLC 3's defaults for the options the checks below read.
DEFAULT_SLIDER_COLOURS = "153;210;153;20;210;20;255;199;15;245;39;29"


def read_vlcrc(path: str | None) -> dict[str, str]:
    """Live `key=value` settings of a vlcrc (the last one of a key wins); BadInput if unreadable."""
    data = read_text_bytes(path, "vlcrc", "VLC's settings file")
    settings: dict[str, str] = {}
    for line in data.decode("utf-8-sig", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "[")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        settings[key.strip()] = value.strip()
    return settings


def _expected(rule: dict[str, Any], key: str) -> str:
    value = rule[key]
    return str(int(value)) if isinstance(value, bool | int) else str(value)


def _setting_is(path: str, key: str, default: str, rule: dict[str, Any], rule_key: str) -> float:
    return float(read_vlcrc(path).get(key, default) == _expected(rule, rule_key))


def _setting_check(key: str, default: str) -> Callable[[str, dict[str, Any]], float]:
    rule_key = "expected_" + key.replace("-", "_")

    def check(vlcrc: str, rule: dict[str, Any]) -> float:
        return _setting_is(vlcrc, key, default, rule, rule_key)

    check.__doc__ = f"vlcrc's `{key}` (default {default}) equals rule.{rule_key}."
    return check


# OSWorld's one-setting checks: the rule's `expected_<key>` against the setting, or VLC's default
# when vlcrc does not set it.
check_qt_bgcone = metric("check_qt_bgcone")(_setting_check("qt-bgcone", "1"))
check_qt_max_volume = metric("check_qt_max_volume")(_setting_check("qt-max-volume", "125"))
check_qt_minimal_view = metric("check_qt_minimal_view")(_setting_check("qt-minimal-view", "0"))
check_play_and_exit = metric("check_play_and_exit")(_setting_check("play-and-exit", "0"))
check_one_instance_when_started_from_file = metric("check_one_instance_when_started_from_file")(
    _setting_check("one-instance-when-started-from-file", "1"))


@metric("check_global_key_play_pause")
def check_global_key_play_pause(vlcrc: str, rule: dict[str, Any]) -> float:
    """A global Play/Pause hotkey is set (1) or not (0), as rule.expected_global_key_play_pause says."""
    is_set = "1" if read_vlcrc(vlcrc).get("global-key-play-pause", "") else "0"
    return float(is_set == _expected(rule, "expected_global_key_play_pause"))


def _colours(text: str) -> list[tuple[int, ...]]:
    values = [int(v) for v in text.split(";") if v.strip()]
    return [tuple(values[i:i + 3]) for i in range(0, len(values) - 2, 3)]


@metric("check_qt_slider_colours")
def check_qt_slider_colours(vlcrc: str, rule: dict[str, Any]) -> float:
    """The volume slider's colours: rule.type `match` (equal to rule.expected_qt_slider_colours)
    or `blackish` (every RGB triple has all channels below 100)."""
    value = read_vlcrc(vlcrc).get("qt-slider-colours", DEFAULT_SLIDER_COLOURS)
    kind = rule.get("type")
    if kind == "match":
        return float(value == str(rule["expected_qt_slider_colours"]))
    if kind == "blackish":
        try:
            colours = _colours(value)
        except ValueError:
            return 0.0  # not numbers: VLC ignores such a value and uses its default colours
        return float(bool(colours) and all(max(c) < 100 for c in colours))
    raise ValueError(f"check_qt_slider_colours: unknown rule type {kind!r} (match, blackish)")


@metric("is_vlc_recordings_folder")
def is_vlc_recordings_folder(vlcrc: str, rule: dict[str, Any]) -> float:
    """vlcrc's `input-record-path` is rule.recording_file_path (a trailing slash does not count)."""
    value = read_vlcrc(vlcrc).get("input-record-path", "")
    if not value:
        return 0.0
    # Upstream splits at the last "=" (a path holding "=" fails) and compares the raw strings.
    return float(posixpath.normpath(value) == posixpath.normpath(str(rule["recording_file_path"])))


@metric("is_vlc_fullscreen")
def is_vlc_fullscreen(window_size: dict[str, int] | None, screen_size: dict[str, int] | None) -> float:
    """VLC's window is exactly as large as the screen."""
    if not window_size or not screen_size:
        return 0.0
    return float(window_size["width"] == screen_size["width"] and window_size["height"] == screen_size["height"])


def _infos(root: ElementTree.Element, category: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for cat in root.iter("category"):
        if cat.get("name") == category:
            for info in cat.iter("info"):
                if info.get("name") and info.text:
                    out[info.get("name", "").lower()] = info.text.strip()
    return out


@metric("is_vlc_playing")
def is_vlc_playing(status_xml: str, rule: dict[str, Any]) -> float:
    """VLC's state is `playing` and its media is rule.file_name (type file_name: the file's name)
    or rule.url (type url: the media's URL ends with it)."""
    with opened(status_xml, "VLC status.xml"):
        root = ElementTree.parse(status_xml).getroot()
        if root.tag != "root" or root.find("state") is None:
            raise ValueError("no <state> element: not VLC's status.xml")
    if (root.findtext("state") or "").strip() != "playing":
        return 0.0
    meta = _infos(root, "meta")
    kind = rule.get("type")
    if kind == "file_name":
        # VLC reports the file's name (`filename`); some streams carry only a title or URL.
        found = meta.get("filename") or meta.get("url") or meta.get("uri") or ""
        want = str(rule["file_name"])
        return float(found == want or found.endswith("/" + want))
    if kind == "url":
        want = str(rule["url"])
        found = [meta[k] for k in ("url", "uri", "location", "filename") if k in meta]
        return float(any(want in f for f in found))
    raise ValueError(f"is_vlc_playing: unknown rule type {kind!r} (file_name, url)")
