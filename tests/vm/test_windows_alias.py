"""The guest's deliberate "Google Chrome" -> Chromium window alias (vm/guest/windows.py), with a
stand-in `wmctrl` on PATH that knows one Chromium window and logs what it was asked."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from vm.guest.protocol import NotFound
from vm.guest.windows import chromium_aliases, thunderbird_aliases, wmctrl

# Matches like wmctrl: -F exact and case-sensitive, else case-insensitive substring; -x on WM_CLASS.
FAKE_WMCTRL = """#!/usr/bin/env python3
import sys
args = sys.argv[1:]
open({log!r}, "a").write(" ".join(args) + "\\n")
name = args[-1]
# The WM_CLASS string and title of Chromium started by the image's google-chrome wrapper.
target = "chromium (/home/user/.config/google-chrome).Google-chrome" if "-x" in args else "Example Domain - Chromium"
ok = name == target if "-F" in args else name.lower() in target.lower()
sys.exit(0 if ok else 1)
"""


@pytest.fixture
def fake_wmctrl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "calls.log"
    script = tmp_path / "bin" / "wmctrl"
    script.parent.mkdir()
    script.write_text(FAKE_WMCTRL.format(log=str(log)))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}:/usr/bin:/bin")
    return log


def test_aliases_keep_the_rest_of_the_name_and_leave_other_names_alone():
    assert chromium_aliases("Google Chrome", strict=False, by_class=False) == [("Chromium", False)]
    assert chromium_aliases("Example Domain - Google Chrome", strict=True, by_class=False) == [
        ("Example Domain - Chromium", True)]
    assert chromium_aliases("google-chrome.Google-chrome", strict=True, by_class=True) == [
        ("chromium.Chromium", True), ("Google-chrome", False)]
    assert chromium_aliases("Google-chrome", strict=False, by_class=True) == [("Chromium", False)]
    assert chromium_aliases("Terminal", strict=False, by_class=False) == []
    assert chromium_aliases("Mail.thunderbird", strict=True, by_class=True) == []


@pytest.mark.parametrize(("name", "strict", "by_class", "calls"), [
    ("Google Chrome", False, False, ["-a Google Chrome", "-a Chromium"]),
    ("Example Domain - Google Chrome", True, False,
     ["-F -a Example Domain - Google Chrome", "-F -a Example Domain - Chromium"]),
    ("google-chrome.Google-chrome", True, True,
     ["-F -x -a google-chrome.Google-chrome", "-F -x -a chromium.Chromium", "-x -a Google-chrome"]),
    ("Google-chrome", False, True, ["-x -a Google-chrome"]),  # already a substring of the class
])
async def test_a_chrome_name_activates_the_chromium_window(fake_wmctrl, name, strict, by_class, calls):
    await wmctrl("a", name, strict=strict, by_class=by_class)
    assert fake_wmctrl.read_text().splitlines() == calls


async def test_no_match_names_every_spelling_tried(fake_wmctrl):
    with pytest.raises(NotFound, match=r"no window matches 'Other - Google Chrome' or 'Other - Chromium' \(wmctrl -F -c"):
        await wmctrl("c", "Other - Google Chrome", strict=True, by_class=False)
    with pytest.raises(NotFound, match=r"^no window matches 'Terminal' \(wmctrl -a: exit 1\)$"):
        await wmctrl("a", "Terminal", strict=False, by_class=False)


def test_thunderbird_strict_class_is_retried_as_the_class_prefix_debian_uses():
    assert thunderbird_aliases("Mail.thunderbird", strict=True, by_class=True) == [("Mail.thunderbird", False)]
    assert thunderbird_aliases("Mail.thunderbird", strict=False, by_class=True) == []  # already a substring
    assert thunderbird_aliases("Mail.thunderbird", strict=True, by_class=False) == []  # a title, not a class
    assert thunderbird_aliases("Msgcompose.thunderbird", strict=True, by_class=True) == []
