"""One sandbox cannot push the host toward OOM: a 2 GB file (sparse, made inside the container)
served to a `vm_file` getter and through the tunnel ends the task with a size error, and the host
process doing it stays under 500 MB of RSS (its own peak, measured by itself)."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import pytest_asyncio

from vm.docker import SOCKET_NAME, DockerProvider, DockerSandbox

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
BIG = "/tmp/limits/big.bin"
# A service that answers with an endless body and no Content-Length (the cap must cut it mid-stream).
ENDLESS = r"""
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers()
        chunk = b"\0" * (1 << 20)
        try:
            while True: self.wfile.write(chunk)
        except OSError: pass
http.server.HTTPServer(("127.0.0.1", 8766), H).serve_forever()
"""

# The host side, in its own process so its peak RSS is its own: the getter as evaluation runs it,
# a tunnelled GET of the same file (Content-Length says 2 GB), and a tunnelled endless body.
HOST_SIDE = r"""
import json, sys, tempfile
from pathlib import Path
import anyio
from benchmarks.context import RunContext
from harness.base.memory import peak_rss_mb
from benchmarks.schema import Task
from scoring.evaluate import evaluate
from vm.client import GuestClient

async def main(socket_path, token):
    out = {}
    async with anyio.create_task_group():
        guest = GuestClient(socket_path=socket_path, token=token, name="limits")
        task = Task.model_validate({"id": "big", "instruction": "i", "evaluator": {
            "func": "compare_text_file", "result": {"type": "vm_file", "path": sys.argv[3], "dest": "big.bin"},
            "expected": {"type": "rule", "rules": {}}}}).bind(domain="os")
        work = Path(tempfile.mkdtemp())
        for name, call in (
            ("getter", lambda: evaluate(task, guest, [], RunContext(work_root=work))),
            ("tunnel", lambda: guest.tunnel_request(8765, "GET", "/big.bin", timeout=300)),
            ("stream", lambda: guest.tunnel_request(8766, "GET", "/", timeout=300)),
        ):
            try:
                await call()
                out[name] = "no error"
            except Exception as e:
                out[name] = f"{type(e).__name__}: {e}"
        out["left_on_disk"] = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
        await guest.aclose()
    out["maxrss_mb"] = peak_rss_mb()  # its own peak, not the pytest parent's (harness/base/memory.py)
    print(json.dumps(out))

anyio.run(main, sys.argv[1], sys.argv[2])
"""


@pytest_asyncio.fixture
async def big_box(docker_provider: DockerProvider) -> AsyncIterator[DockerSandbox]:
    box = await docker_provider.start()
    try:
        made = await box.run(["sh", "-c", f"mkdir -p /tmp/limits && truncate -s 2G {BIG} && stat -c %s {BIG}"])
        assert made.ok and made.output.strip() == str(2 << 30), made
        await box.guest.launch(["python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", "/tmp/limits",
                                "8765"])
        await box.guest.launch(["python3", "-c", ENDLESS])
        with anyio.fail_after(60):  # both services listen
            while True:
                files, _ = await box.guest.tunnel_request(8765, "HEAD", "/big.bin")
                endless, _ = await box.guest.tunnel_request(8766, "HEAD", "/")  # 501 (no do_HEAD) once it listens
                if files == 200 and endless == 501:
                    break
                await anyio.sleep(0.5)
        yield box
    finally:
        with anyio.CancelScope(shield=True):
            await docker_provider.stop(box)


async def test_a_2gb_file_to_a_getter_and_through_the_tunnel_is_a_size_error_with_host_rss_under_500mb(
        big_box: DockerSandbox) -> None:
    socket_path = str(big_box.spec.host_dir / SOCKET_NAME)
    with anyio.fail_after(600):
        proc = await anyio.run_process([sys.executable, "-c", HOST_SIDE, socket_path, big_box.spec.token or "", BIG],
                                       cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    print(out)  # the measured figures, for the report
    assert out["getter"].startswith("TooLarge: ") and f"{2 << 30} bytes" in out["getter"], out
    assert out["tunnel"].startswith("TooLarge: ") and f"{2 << 30} bytes" in out["tunnel"], out
    assert out["stream"].startswith("TooLarge: ") and "limit is" in out["stream"], out
    assert out["left_on_disk"] == 0
    assert out["maxrss_mb"] < 500, out
