"""The desktop image's build inputs and the guest server, checked without Docker.

The image tag must follow the sources (a changed guest server means a new image, an unchanged tree
reuses the old one); the guest server's protocol (auth, errors, timeouts, files) is exercised here
in-process on a unix socket, with no X display. Docker-backed checks live in the integration tests.
"""

from __future__ import annotations

import ast
import asyncio
import io
import os
import re
import shutil
import sys
import tarfile
import time
from pathlib import Path

import aiohttp
import pytest

from vm.image import context, debootstrap, image_tag

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def sources(tmp_path: Path) -> tuple[Path, Path]:
    image_dir = tmp_path / "image"
    guest_dir = tmp_path / "guest"
    shutil.copytree(context.IMAGE_DIR, image_dir)
    shutil.copytree(context.GUEST_DIR, guest_dir)
    return image_dir, guest_dir


def test_image_tag_names_the_desktop_repo_and_is_stable():
    tag = image_tag()
    assert re.fullmatch(r"cua-harness/desktop:[0-9a-f]{12}", tag), tag
    assert image_tag() == tag


def test_copied_sources_give_the_same_tag_as_the_repo(sources):
    assert context.image_tag(*sources) == image_tag()


def test_tag_changes_when_a_guest_file_changes_and_returns_when_reverted(sources):
    image_dir, guest_dir = sources
    before = context.image_tag(image_dir, guest_dir)
    server = guest_dir / "server.py"
    original = server.read_text()
    server.write_text(original + "\n# changed\n")
    changed = context.image_tag(image_dir, guest_dir)
    server.write_text(original)
    assert changed != before
    assert context.image_tag(image_dir, guest_dir) == before


def test_tag_changes_when_a_new_guest_module_appears(sources):
    image_dir, guest_dir = sources
    before = context.image_tag(image_dir, guest_dir)
    (guest_dir / "extra.py").write_text("X = 1\n")
    assert context.image_tag(image_dir, guest_dir) != before


@pytest.mark.parametrize("name", ["Dockerfile", "entrypoint.sh", "wheels.txt", "files/home/user/.config/mimeapps.list"])
def test_tag_changes_when_an_image_file_changes(sources, name):
    image_dir, guest_dir = sources
    before = context.image_tag(image_dir, guest_dir)
    path = image_dir / name
    path.write_bytes(path.read_bytes() + b"\n")
    assert context.image_tag(image_dir, guest_dir) != before


def test_tag_ignores_bytecode_modes_and_times(sources):
    image_dir, guest_dir = sources
    before = context.image_tag(image_dir, guest_dir)
    (guest_dir / "__pycache__").mkdir(exist_ok=True)
    (guest_dir / "__pycache__" / "server.cpython-311.pyc").write_bytes(b"junk")
    os.utime(guest_dir / "server.py", (1, 1))
    (image_dir / "entrypoint.sh").chmod(0o600)
    (image_dir / "build.py").write_text("# host-side code is not part of the image\n")
    assert context.image_tag(image_dir, guest_dir) == before


def test_context_tar_holds_everything_the_dockerfile_copies(tmp_path):
    wheel = tmp_path / "pyautogui-0.9.54-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    fonts = {"fonts/ubuntu/Ubuntu-R.ttf": b"ttf"}  # fetched from npm by the build (vm/image/fonts.py)
    with tarfile.open(fileobj=io.BytesIO(context.context_tar([wheel], extra=fonts))) as tar:
        names = set(tar.getnames())
        entry = tar.getmember("entrypoint.sh")
        requirements = tar.extractfile("wheels/requirements.txt").read().decode()
    assert {"Dockerfile", "guest/server.py", "guest/__main__.py", f"wheels/{wheel.name}"} <= names
    assert entry.mode & 0o111, "entrypoint must be executable"
    assert "pyautogui==0.9.54" in requirements.split()
    dockerfile = (context.IMAGE_DIR / "Dockerfile").read_text()
    for source in re.findall(r"^COPY\s+(\S+)\s+\S+\s*$", dockerfile, flags=re.M):
        source = source.rstrip("/")
        assert any(n == source or n.startswith(source + "/") for n in names), f"COPY {source} missing from context"


def test_dockerfile_base_is_overridable_with_slim_default():
    lines = [ln.strip() for ln in (context.IMAGE_DIR / "Dockerfile").read_text().splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith("#")]
    assert code[0] == "ARG BASE=debian:bookworm-slim"
    assert code[1] == "FROM ${BASE}"


def test_guest_imports_only_what_the_image_provides():
    allowed = set(sys.stdlib_module_names) | {"aiohttp", "Xlib", "PIL", "pyatspi", "gi"}
    for path in sorted(context.GUEST_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = [(node.module or "").split(".")[0]]
            else:
                continue
            for root in roots:
                assert root in allowed, f"{path.name} imports {root}, which the image does not have"


def test_host_mirrors_reads_deb822_and_one_line_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("CUA_DEBIAN_MIRROR", raising=False)
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text("deb https://example.invalid/apt cloud-sdk-bookworm main\n")
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n"
    )
    assert debootstrap.host_mirrors(apt) == ("http://mirror.example/debian", "http://mirror.example/debian-security")
    (apt / "sources.list.d" / "debian.sources").unlink()
    (apt / "sources.list").write_text("deb [arch=amd64] http://one.example/debian/ bookworm main\n")
    assert debootstrap.host_mirrors(apt) == ("http://one.example/debian", None)
    (apt / "sources.list").write_text("")
    assert debootstrap.host_mirrors(apt) == (debootstrap.DEFAULT_MIRROR, None)


# -- the guest server, in-process on a unix socket (no X here: display-bound paths answer 503) --

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def guest(tmp_path, monkeypatch):
    from aiohttp import web

    from vm.guest import server

    monkeypatch.setenv("DISPLAY", ":97")  # no X server there
    sock = str(tmp_path / "guest.sock")
    runner = web.AppRunner(server.make_app(TOKEN))
    await runner.setup()
    await web.UnixSite(runner, sock).start()
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=sock)) as session:
        yield session
    await runner.cleanup()


async def test_guest_rejects_requests_without_the_token(guest):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        async with guest.get("http://guest/platform", headers=headers) as r:
            assert r.status == 401
            assert "token" in (await r.json())["error"]
    async with guest.get("http://guest/platform", headers=AUTH) as r:
        assert r.status == 200
        assert await r.text() == "Linux"


async def test_guest_execute_returns_output_and_code_with_home_expanded(guest):
    home_x = str(Path.home() / "x")
    body = {"command": ["sh", "-c", 'echo "$0"; echo oops >&2; exit 3', "~/x"], "shell": False}
    async with guest.post("http://guest/execute", json=body, headers=AUTH) as r:
        result = await r.json()
    assert r.status == 200
    assert result == {"status": "success", "output": home_x + "\n", "error": "oops\n", "returncode": 3}


async def test_guest_slow_command_times_out_while_server_stays_responsive(guest):
    async def slow():
        t0 = time.monotonic()
        body = {"command": "sleep 500 & sleep 400", "shell": True, "timeout": 2}
        async with guest.post("http://guest/setup/execute", json=body, headers=AUTH) as r:
            return time.monotonic() - t0, r.status, await r.json()

    task = asyncio.ensure_future(slow())
    await asyncio.sleep(0.3)
    t0 = time.monotonic()
    async with guest.get("http://guest/platform", headers=AUTH) as r:
        assert r.status == 200
    assert time.monotonic() - t0 < 1.0
    elapsed, status, result = await task
    assert status == 200
    assert 1.9 < elapsed < 5.0
    assert result["status"] == "error" and result["returncode"] == -1
    assert "timed out" in result["message"]


async def test_guest_upload_then_download_is_byte_exact(guest, tmp_path):
    data = os.urandom(5 * 1024 * 1024)
    target = tmp_path / "new" / "dir" / "blob.bin"
    form = aiohttp.FormData()
    form.add_field("file_path", str(target))
    form.add_field("file_data", data, filename="blob.bin", content_type="application/octet-stream")
    async with guest.post("http://guest/setup/upload", data=form, headers=AUTH) as r:
        assert r.status == 200, await r.text()
    async with guest.post("http://guest/file", data={"file_path": str(target)}, headers=AUTH) as r:
        assert r.status == 200
        assert await r.read() == data
    async with guest.post("http://guest/file", data={"file_path": str(tmp_path / "missing")}, headers=AUTH) as r:
        assert r.status == 404
        assert "error" in await r.json()


async def test_guest_bad_requests_get_400_json_not_tracebacks(guest):
    cases = [
        ("/execute", b"{not json", "application/json"),
        ("/execute", b'{"command": 5}', "application/json"),
        ("/execute", b'{"command": "true", "timeout": -1}', "application/json"),
        ("/run_python", b"{}", "application/json"),
    ]
    for path, body, ctype in cases:
        async with guest.post(f"http://guest{path}", data=body, headers={**AUTH, "Content-Type": ctype}) as r:
            payload = await r.json()
            assert r.status == 400, (path, body, payload)
            assert payload["status"] == "error" and "Traceback" not in payload["message"]


async def test_guest_health_is_503_json_until_x_is_up(guest):
    async with guest.get("http://guest/health", headers=AUTH) as r:
        assert r.status == 503
        payload = await r.json()
    assert payload["x"] is False


async def test_guest_terminal_answers_200_for_osworld_liveness_probe(guest):
    async with guest.get("http://guest/terminal", headers=AUTH) as r:
        assert r.status == 200
        assert (await r.json())["status"] == "success"


def test_guest_listen_addresses():
    from vm.guest.server import listen_address

    assert listen_address("unix:/run/guest/guest.sock") == ("unix", "/run/guest/guest.sock")
    assert listen_address("tcp:127.0.0.1:5000") == ("tcp", ("127.0.0.1", 5000))
    with pytest.raises(SystemExit):
        listen_address("5000")
