"""The image's application set: apps.json, the manifest the build writes, and the apps in a sandbox.

Without Docker: apps.json parses with clear errors, the Dockerfile installs exactly what it
declares, the host-side manifest cache round-trips, and the build-time checker refuses an app
whose command is missing. With Docker (one shared sandbox): every declared command exists, and
Chrome's DevTools port, VLC's HTTP interface, PulseAudio, gsettings and the time zone work the
way OSWorld's steps and getters use them.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import sys
import tarfile
from pathlib import Path

import pytest
import pytest_asyncio
from test_docker_sandbox import poll

from harness.base.errors import ConfigError
from vm.image import context, manifest, write_manifest

REQUIRED_APPS = {
    "chrome", "gimp", "vlc", "thunderbird", "libreoffice_calc", "libreoffice_writer",
    "libreoffice_impress", "terminal", "text_editor", "vscode",
}


# --- without Docker ---------------------------------------------------------------------------


def test_apps_json_declares_osworlds_app_set_vscode_included():
    apps = manifest.declared_apps()
    assert REQUIRED_APPS <= set(apps)
    for key, spec in apps.items():
        assert spec.key == key and spec.commands and spec.version
    assert "google-chrome" in apps["chrome"].commands and "socat" in apps["chrome"].commands
    assert "code" in apps["vscode"].commands and not manifest.unavailable_apps()


def test_the_build_context_installs_exactly_the_declared_packages():
    tar = tarfile.open(fileobj=io.BytesIO(context.context_tar([])))
    listed = tar.extractfile("app-packages.txt").read().decode().split()
    declared = {p for spec in manifest.declared_apps().values() for p in spec.packages}
    assert set(listed) == declared and listed == sorted(listed)
    dockerfile = (context.IMAGE_DIR / "Dockerfile").read_text()
    apt_step = dockerfile[dockerfile.index("RUN apt-get update"):dockerfile.index("Font caches")]
    assert "$(cat /tmp/app-packages.txt)" in apt_step
    assert "write_manifest.py /etc/cua-harness/apps.json /etc/cua-harness/manifest.json" in dockerfile
    # The wrappers must be executable in the image: the tar carries their mode.
    assert tar.getmember("files/usr/local/bin/google-chrome").mode & 0o111
    assert tar.getmember("files/usr/local/bin/timedatectl").mode & 0o111


def test_editing_apps_json_names_a_new_image(tmp_path):
    import shutil

    image_dir, guest_dir = tmp_path / "image", tmp_path / "guest"
    shutil.copytree(context.IMAGE_DIR, image_dir)
    shutil.copytree(context.GUEST_DIR, guest_dir)
    before = context.image_tag(image_dir, guest_dir)
    data = json.loads((image_dir / "apps.json").read_text())
    data["apps"]["gimp"]["commands"].append("gimp-console")
    (image_dir / "apps.json").write_text(json.dumps(data))
    assert context.image_tag(image_dir, guest_dir) != before


@pytest.mark.parametrize(
    ("apps", "expected"),
    [
        ({"chrome": {"packages": ["chromium"], "commands": [], "version": ["x"]}}, "apps.chrome.commands"),
        ({"chrome": {"packages": ["chromium"], "commands": ["x"], "version": "x --version"}}, "apps.chrome.version"),
        ({"chrome": {"packages": [], "commands": ["x"], "version": ["x"], "colour": 1}}, "unknown field"),
        ({"Chrome": {"packages": [], "commands": ["x"], "version": ["x"]}}, "lower_snake_case"),
    ],
)
def test_a_bad_apps_file_names_the_file_and_field(tmp_path, apps, expected):
    path = tmp_path / "apps.json"
    path.write_text(json.dumps({"apps": apps}))
    with pytest.raises(ConfigError) as err:
        manifest.load_apps_file(path)
    assert str(path) in str(err.value) and expected in str(err.value)
    assert "\n" not in str(err.value)


def test_image_manifest_is_none_until_cached_then_read_by_tag(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    tag = "cua-harness/desktop:0123456789ab"
    assert manifest.image_manifest(tag) is None
    data = {"apps": {"gimp": {"version": "GIMP 2.10.34", "commands": ["gimp"]}}, "unavailable": {"vscode": "r"}}
    manifest.cache_manifest(tag, data)
    assert manifest.image_manifest(tag) == data
    assert manifest.image_manifest("cua-harness/desktop:ffffffffffff") is None
    lines = manifest.format_manifest(data)
    assert lines[0].split() == ["gimp", "GIMP", "2.10.34"] and "unavailable: r" in lines[1]


def test_the_build_step_refuses_an_app_whose_command_is_missing(tmp_path, capsys):
    apps = {
        "apps": {
            "present": {"packages": [], "commands": [Path(sys.executable).name], "version": [sys.executable, "--version"]},
            "absent": {"packages": [], "commands": ["no-such-command-cua"], "version": ["true"]},
        }
    }
    (tmp_path / "apps.json").write_text(json.dumps(apps))
    out = tmp_path / "manifest.json"
    assert write_manifest.main(str(tmp_path / "apps.json"), str(out)) == 1
    assert "absent: command 'no-such-command-cua' not found" in capsys.readouterr().err
    assert not out.exists()


# --- in a sandbox -------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def box(docker_provider):
    """A sandbox of this module's own: these tests change the time zone, settings and open apps."""
    sandbox = await docker_provider.start()
    try:
        yield sandbox
    finally:
        await docker_provider.stop(sandbox)


async def sh(sandbox, command: str, timeout: float = 30.0):
    return await sandbox.guest.execute(command, shell=True, timeout=timeout)


def _http_get(url: str, password: str | None = None) -> str:
    """A python one-liner run inside the sandbox: prints the status and the body of one GET."""
    auth = ""
    if password is not None:
        auth = f"r.add_header('Authorization','Basic '+base64.b64encode(b':{password}').decode());"
    code = (
        "import base64,urllib.request,urllib.error\n"
        f"r=urllib.request.Request({url!r});{auth}\n"
        "try:\n r=urllib.request.urlopen(r,timeout=3);print(r.status);print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n print(e.code)\n"
        "except OSError as e:\n print('down',e)\n"
    )
    return f"python3 -c {shlex.quote(code)}"


@pytest.mark.docker
async def test_every_declared_command_exists_and_the_image_manifest_matches_the_host_cache(box, desktop_image):
    commands = sorted({c for spec in manifest.declared_apps().values() for c in spec.commands})
    result = await sh(box, "for c in " + " ".join(commands) + '; do command -v "$c" >/dev/null || echo "missing $c"; done')
    assert result.ok and "missing" not in result.output, result.output
    inside = json.loads(await box.guest.download("/etc/cua-harness/manifest.json"))
    assert inside == manifest.image_manifest(desktop_image)
    assert set(inside["apps"]) == set(manifest.declared_apps()) and not inside["unavailable"]
    assert inside["apps"]["vscode"]["version"].startswith("code-server 4.")
    assert all(info["version"] for info in inside["apps"].values())


@pytest.mark.docker
async def test_google_chrome_answers_on_its_devtools_port_with_the_google_chrome_profile(box):
    await box.guest.launch(["google-chrome", "--remote-debugging-port=1337"])
    await box.guest.launch(["socat", "tcp-listen:9222,fork", "tcp:localhost:1337"])
    try:
        version = await poll(
            lambda: sh(box, _http_get("http://127.0.0.1:9222/json/version")),
            lambda r: r.output.startswith("200"),
            deadline_s=30,
            what="DevTools /json/version through socat's 9222",
        )
        info = json.loads(version.output.split("\n", 1)[1])
        assert "Chrome/" in info["Browser"] and info["webSocketDebuggerUrl"].startswith("ws://127.0.0.1:9222/")
        cmdline = await sh(box, "tr '\\0' ' ' </proc/$(pgrep -o -x chromium)/cmdline")
        assert "--user-data-dir=/home/user/.config/google-chrome" in cmdline.output
        prefs = await poll(
            lambda: sh(box, "ls /home/user/.config/google-chrome/Default"),
            lambda r: "Preferences" in r.output,
            deadline_s=15,
            what="Chrome's Default profile",
        )
        assert prefs.ok
        assert not (await sh(box, "test -e /home/user/.config/chromium")).ok
        # active_url_from_accessTree reads the address bar through AT-SPI.
        await poll(
            box.guest.accessibility,
            lambda xml: bool(xml) and 'name="Address and search bar"' in xml,
            deadline_s=20,
            what="Chrome's address bar in the accessibility tree",
        )
    finally:
        await sh(box, "pkill -x chromium; pkill -x socat; true")


@pytest.mark.docker
async def test_vlc_http_interface_answers_with_osworlds_password(box):
    await box.guest.launch("VLC_VERBOSE=-1 vlc --no-audio --no-video-title-show", shell=True)
    try:
        status = await poll(
            lambda: sh(box, _http_get("http://127.0.0.1:8080/requests/status.xml", "password")),
            lambda r: r.output.startswith("200"),
            deadline_s=30,
            what="VLC's /requests/status.xml",
        )
        assert "<state>" in status.output
        refused = await sh(box, _http_get("http://127.0.0.1:8080/requests/status.xml", "wrong"))
        assert refused.output.strip() == "401"
    finally:
        await sh(box, "pkill -x vlc; true")


@pytest.mark.docker
async def test_pulseaudio_spawns_on_demand_and_answers_volume_queries(box):
    info = await sh(box, "pactl info")
    assert info.ok and "Server Name: pulseaudio" in info.output, info.error
    volume = await sh(box, "pactl set-sink-volume @DEFAULT_SINK@ 40% && pactl get-sink-volume @DEFAULT_SINK@")
    assert volume.ok and "40%" in volume.output, volume.output + volume.error
    mixer = await sh(box, "amixer sget Master")
    assert mixer.ok and re.search(r"\[\d+%\]", mixer.output), mixer.output + mixer.error


@pytest.mark.docker
async def test_gsettings_reads_and_writes_the_gnome_schemas_os_tasks_use(box):
    for key in ("org.gnome.desktop.interface text-scaling-factor", "org.gnome.shell favorite-apps",
                "org.gnome.desktop.background picture-uri"):
        got = await sh(box, f"gsettings get {key}")
        assert got.ok and got.output.strip(), f"{key}: {got.error}"
    # OSWorld's own form: a fresh shell pointing at the session bus by its usual path.
    changed = await sh(
        box,
        "export DBUS_SESSION_BUS_ADDRESS='unix:path=/run/user/1000/bus'; "
        "gsettings set org.gnome.desktop.interface text-scaling-factor 1.25 && "
        "gsettings get org.gnome.desktop.interface text-scaling-factor",
    )
    try:
        assert changed.ok and changed.output.strip() == "1.25", changed.output + changed.error
    finally:
        await sh(box, "gsettings reset org.gnome.desktop.interface text-scaling-factor")


@pytest.mark.docker
async def test_the_user_can_set_the_time_zone_with_sudo(box):
    denied = await sh(box, "timedatectl set-timezone Asia/Tokyo")
    assert not denied.ok
    try:
        changed = await sh(box, "echo password | sudo -S timedatectl set-timezone Asia/Tokyo && timedatectl && date +%Z")
        assert changed.ok, changed.error
        lines = changed.output.strip().split("\n")
        assert lines[3].strip() == "Time zone: Asia/Tokyo (JST, +0900)" and lines[-1].strip() == "JST"
    finally:
        await sh(box, "echo password | sudo -S timedatectl set-timezone Etc/UTC")
    assert (await sh(box, "timedatectl")).output.split("\n")[3].endswith("+0000)")


@pytest.mark.docker
async def test_gimp_thunderbird_impress_and_nautilus_open_their_windows(box):
    windows = {
        "GNU Image Manipulation Program": ["gimp"],
        "Mozilla Thunderbird": ["/usr/bin/thunderbird"],
        "LibreOffice Impress": ["libreoffice", "--impress"],
        "Home": ["nautilus", "/home/user"],
    }
    for argv in windows.values():
        await box.guest.launch(argv)
    try:
        await poll(
            lambda: sh(box, "wmctrl -l"),
            lambda r: all(title in r.output for title in windows),
            deadline_s=45,
            what=f"windows {sorted(windows)}",
        )
    finally:
        await sh(box, "pkill -x gimp; pkill -f thunderbird; pkill -x soffice.bin; pkill -x nautilus; true")
