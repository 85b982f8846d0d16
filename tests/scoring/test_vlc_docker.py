"""VLC in a real sandbox, launched the way OSWorld's task files launch it: the getters read its
HTTP interface's status.xml through the guest tunnel (basic auth, port 8080), its vlcrc and the
default video player, and the metrics score them."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from helpers import setup_context

from benchmarks.schema import GetterSpec
from benchmarks.setup_steps import run_setup
from scoring.evaluate import NothingFound, fetch_state
from scoring.metrics import vlc as m

pytestmark = pytest.mark.docker

CLIP = "/home/user/Desktop/tone.mp4"


def spec(**kw) -> GetterSpec:
    return GetterSpec.model_validate(kw)


async def test_vlc_getters_read_the_running_player_its_settings_and_the_default_player(docker_provider, tmp_path: Path):
    ctx = setup_context(tmp_path, "vlc")
    box = await docker_provider.start()
    guest = box.guest
    try:
        with anyio.fail_after(55):
            await run_setup([
                {"type": "execute", "parameters": {"shell": True, "command": (
                    "ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc=duration=120:size=160x120:rate=2 "
                    "-f lavfi -i sine=frequency=440:duration=120 -c:v libx264 -preset ultrafast -pix_fmt yuv420p "
                    f"-c:a aac -shortest {CLIP}")}},
                {"type": "launch", "parameters": {"command": ["vlc", CLIP]}},
                {"type": "execute", "parameters": {"command": "xdotool search --onlyvisible --name 'tone.mp4 - VLC'",
                                                   "shell": True, "until": {"returncode": 0}}},
            ], guest, ctx)

            playing = {"type": "file_name", "file_name": "tone.mp4"}
            score = 0.0
            with anyio.move_on_after(20):  # the interface reports "playing" once the input has started
                while score != 1.0:
                    status = await fetch_state(spec(type="vlc_playing_info", dest="status.xml"), guest, ctx)
                    score = m.is_vlc_playing(status, playing)
                    if score != 1.0:
                        await anyio.sleep(0.3)
            assert score == 1.0, status
            assert m.is_vlc_playing(status, {"type": "file_name", "file_name": "other.mp4"}) == 0.0

            vlcrc = await fetch_state(spec(type="vlc_config", dest="vlcrc"), guest, ctx)
            assert m.read_vlcrc(vlcrc)["extraintf"] == "http"  # the image's seed
            assert m.check_qt_minimal_view(vlcrc, {"expected_qt_minimal_view": 0}) == 1.0

            player = await fetch_state(spec(type="default_video_player"), guest, ctx)
            assert isinstance(player, str) and player

            window = await fetch_state(spec(type="vm_window_size", app_class_name="vlc"), guest, ctx)
            screen = await fetch_state(spec(type="vm_screen_size"), guest, ctx)
            assert m.is_vlc_fullscreen(window, screen) == 0.0

            await guest.execute("pkill -x vlc; while pgrep -x vlc >/dev/null; do sleep 0.1; done", shell=True,
                                timeout=20)
            with pytest.raises(NothingFound):  # nothing listens on 8080: OSWorld's "not 200 -> None"
                await fetch_state(spec(type="vlc_playing_info", dest="gone.xml"), guest, ctx)
    finally:
        await docker_provider.stop(box)
