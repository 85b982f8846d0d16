"""UNIT tests of setup-step logic against an in-process fake guest (no sandbox): placeholders,
`until` polling, host-file confinement, download caching, error naming, unsupported features."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from aiohttp import web
from fake_guest import FakeGuest
from helpers import serve

from benchmarks.context import RunContext, TaskContext
from benchmarks.downloads import HostFiles
from benchmarks.loader import load_suite
from benchmarks.schema import Task
from benchmarks.setup_steps import run_setup, run_task_setup, substitute
from harness.base.errors import SandboxError, TaskError
from scoring.coverage import unsupported_features
from vm.types import ExecResult, WindowNotFound

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "osworld-sample"


def make_ctx(tmp_path: Path, *, assets: Path | None = None, **run_kwargs) -> TaskContext:
    task = Task.model_validate({"id": "t", "instruction": "i", "evaluator": {"func": "infeasible"}})
    task.bind(domain="os", assets_dir=assets)
    files = HostFiles(tmp_path / "cache", allow_private=True, backoff=0.01)  # the test server is on 127.0.0.1
    run = RunContext(work_root=tmp_path / "work", downloads=files, **run_kwargs)
    return run.for_setup(task, object())


def test_placeholders_are_substituted_half_sizes_first() -> None:
    cmd = ["python", "-c", "click({SCREEN_WIDTH_HALF}, {SCREEN_HEIGHT_HALF}); {SCREEN_WIDTH}x{SCREEN_HEIGHT}"]
    assert substitute(cmd, password="pw", screen=(1280, 721)) == ["python", "-c", "click(640, 360); 1280x721"]
    assert substitute("echo {CLIENT_PASSWORD} | sudo -S true", password="s3cret", screen=(1, 1)) == \
        "echo s3cret | sudo -S true"


async def test_execute_substitutes_with_the_guest_screen_and_the_run_password(tmp_path: Path) -> None:
    guest = FakeGuest(screen=(1024, 768))
    ctx = make_ctx(tmp_path, client_password="pw")
    await run_setup([{"type": "execute", "parameters": {"command": ["x", "{SCREEN_WIDTH_HALF}"]}},
                     {"type": "command", "parameters": {"command": "echo {CLIENT_PASSWORD}", "shell": True}}], guest, ctx)
    assert [c for k, c in guest.calls if k == "execute"] == [["x", "512"], "echo pw"]


async def test_until_polls_until_the_condition_holds(tmp_path: Path) -> None:
    answers = iter([ExecResult(returncode=1, output="starting"), ExecResult(returncode=1, output="still"),
                    ExecResult(returncode=0, output="ready now")])
    guest = FakeGuest(handler=lambda c, s: next(answers))
    ctx = make_ctx(tmp_path)
    await run_setup([{"type": "execute", "parameters": {"command": "probe", "shell": True,
                                                        "until": {"stdout": "ready"}, "stdout": "probe.out"}}], guest, ctx)
    assert sum(k == "execute" for k, _ in guest.calls) == 3
    assert (ctx.work_dir / "probe.out").read_text() == "ready now"


async def test_until_that_never_holds_is_an_infrastructure_error_with_a_deadline(tmp_path: Path) -> None:
    guest = FakeGuest(handler=lambda c, s: ExecResult(returncode=1))
    ctx = make_ctx(tmp_path)
    with anyio.fail_after(10):
        with pytest.raises(SandboxError, match=r"config step 1 \(execute\): `until` .* not met within 1 s"):
            await run_setup([{"type": "sleep", "parameters": {"seconds": 0}},
                             {"type": "execute", "parameters": {"command": "x", "until": {"returncode": 0},
                                                                "until_timeout": 1}}], guest, ctx)


async def test_nonzero_exit_without_until_is_not_fatal_as_upstream(tmp_path: Path) -> None:
    guest = FakeGuest(handler=lambda c, s: ExecResult(returncode=1, error="mkdir: File exists"))
    await run_setup([{"type": "execute", "parameters": {"command": "mkdir /home/test1", "shell": True}}],
                    guest, make_ctx(tmp_path))
    assert guest.calls == [("execute", "mkdir /home/test1")]


async def test_download_from_assets_and_file_url_lands_in_guest_home(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    (assets / "docs").mkdir(parents=True)
    (assets / "docs" / "a.txt").write_bytes(b"alpha")
    guest = FakeGuest()
    steps = [{"type": "download", "parameters": {"files": [
        {"url": "docs/a.txt", "path": "/home/user/a.txt"},
        {"url": (assets / "docs" / "a.txt").as_uri(), "path": "Desktop/b.txt"},
    ]}}, {"type": "upload_file", "parameters": {"files": [{"local_path": "docs/a.txt", "path": "~/c.txt"}]}},
        {"type": "open", "parameters": {"path": "/home/user/a.txt"}}]
    await run_setup(steps, guest, make_ctx(tmp_path, assets=assets))
    assert guest.files == {"/home/user/a.txt": b"alpha", "/home/user/Desktop/b.txt": b"alpha", "/home/user/c.txt": b"alpha"}
    assert guest.calls[-1] == ("open", "/home/user/a.txt")


@pytest.mark.parametrize("url", ["../secret.txt", "/etc/passwd", "file:///etc/passwd", "docs/../../secret.txt"])
async def test_host_paths_cannot_escape_the_assets_folder(tmp_path: Path, url: str) -> None:
    assets = tmp_path / "assets"
    (assets / "docs").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("no")
    guest = FakeGuest()
    with pytest.raises(TaskError, match=r"config step 0 \(download\): .*escapes the suite's assets folder"):
        await run_setup([{"type": "download", "parameters": {"files": [{"url": url, "path": "x"}]}}], guest,
                        make_ctx(tmp_path, assets=assets))
    assert guest.files == {}


async def test_symlinks_out_of_the_assets_folder_are_refused(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    (tmp_path / "secret.txt").write_text("no")
    (assets / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(TaskError, match="escapes"):
        await run_setup([{"type": "upload_file", "parameters": {"files": [{"local_path": "link.txt", "path": "x"}]}}],
                        FakeGuest(), make_ctx(tmp_path, assets=assets))


async def test_missing_asset_and_unknown_type_are_task_errors_naming_the_step(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    ctx = make_ctx(tmp_path, assets=tmp_path / "assets")
    with pytest.raises(TaskError, match=r"config step 0 \(download\): nope.txt: not found"):
        await run_setup([{"type": "download", "parameters": {"files": [{"url": "nope.txt", "path": "x"}]}}], FakeGuest(), ctx)
    with pytest.raises(TaskError, match=r"config step 1 \(googledrive\): .*not supported: needs Google Drive"):
        await run_setup([{"type": "sleep", "parameters": {"seconds": 0}},
                         {"type": "googledrive", "parameters": {"operation": ["delete"]}}], FakeGuest(), ctx)


async def test_stdout_file_names_cannot_escape_the_cache_folder(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="must stay inside"):
        await run_setup([{"type": "execute", "parameters": {"command": "x", "stdout": "../../evil"}}], FakeGuest(),
                        make_ctx(tmp_path))


async def test_launch_activate_close_and_sleep_reach_the_guest(tmp_path: Path) -> None:
    guest = FakeGuest()
    await run_setup([{"type": "launch", "parameters": {"command": "mousepad '/home/user/my file.txt'"}},
                     {"type": "activate_window", "parameters": {"window_name": "Mousepad", "strict": True}},
                     {"type": "sleep", "parameters": {"seconds": 0.01}},
                     {"type": "close_window", "parameters": {"window_name": "Mousepad"}}], guest, make_ctx(tmp_path))
    assert guest.calls == [("launch", ["mousepad", "/home/user/my file.txt"]), ("activate_window", "Mousepad"),
                           ("close_window", "Mousepad")]


class _Server:
    def __init__(self) -> None:
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if request.path.endswith("/gone.txt"):
            return web.Response(status=404)
        if request.path.endswith("/flaky.txt"):
            return web.Response(status=503)
        if request.path.endswith("/busy.txt") and self.hits < 3:
            return web.Response(status=429)
        if request.path.endswith("/metadata"):
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        return web.Response(body=b"remote bytes")


@pytest.fixture
async def http_server():
    srv = _Server()
    app = web.Application()
    app.router.add_get("/{tail:.*}", srv.handle)
    async with serve(app) as url:
        yield srv, url


async def test_http_download_is_fetched_once_on_the_host_and_cached(tmp_path: Path, http_server) -> None:
    srv, base = http_server
    ctx = make_ctx(tmp_path)
    guest = FakeGuest()
    step = {"type": "download", "parameters": {"files": [{"url": f"{base}/d/file.xlsx?token=abc", "path": "/tmp/f.xlsx"}]}}
    await run_setup([step, step], guest, ctx)
    assert guest.files["/tmp/f.xlsx"] == b"remote bytes"
    assert srv.hits == 1
    cached = ctx.run.downloads.cache_path(f"{base}/d/file.xlsx?token=abc")
    assert cached.read_bytes() == b"remote bytes" and cached.name == "file.xlsx"


async def test_http_404_is_a_task_error_and_5xx_an_infrastructure_error(tmp_path: Path, http_server, monkeypatch) -> None:
    _srv, base = http_server
    monkeypatch.setattr("benchmarks.downloads.ATTEMPTS", 1)
    ctx = make_ctx(tmp_path)
    with pytest.raises(TaskError, match="HTTP 404"):
        await run_setup([{"type": "download", "parameters": {"files": [{"url": f"{base}/gone.txt", "path": "x"}]}}],
                        FakeGuest(), ctx)
    with pytest.raises(SandboxError, match=r"config step 0 \(download\): .*HTTP 503"):
        await run_setup([{"type": "download", "parameters": {"files": [{"url": f"{base}/flaky.txt?k=secret", "path": "x"}]}}],
                        FakeGuest(), ctx)
    assert not list((tmp_path / "cache").rglob("*.part"))


async def test_a_rate_limited_download_is_retried_not_called_gone(tmp_path: Path, http_server) -> None:
    srv, base = http_server
    guest = FakeGuest()
    await run_setup([{"type": "download", "parameters": {"files": [{"url": f"{base}/busy.txt", "path": "/tmp/b"}]}}],
                    guest, make_ctx(tmp_path))
    assert guest.files["/tmp/b"] == b"remote bytes" and srv.hits == 3  # two 429s, then the file


async def test_downloads_refuse_private_hosts_by_default_and_on_redirect(tmp_path: Path, http_server, monkeypatch) -> None:
    srv, base = http_server
    strict = RunContext(work_root=tmp_path / "w", downloads=HostFiles(tmp_path / "c")).for_setup(None, object())
    with pytest.raises(TaskError, match=r"127\.0\.0\.1 is a loopback address.*--allow-private-urls"):
        await run_setup([{"type": "download", "parameters": {"files": [{"url": f"{base}/a.txt", "path": "x"}]}}],
                        FakeGuest(), strict)
    assert srv.hits == 0
    # A redirect is checked like the first URL: here 127.0.0.1 counts as public, the metadata address does not.
    import benchmarks.http_fetch as http_fetch

    real = http_fetch.address_kind
    monkeypatch.setattr(http_fetch, "address_kind", lambda a: None if a == "127.0.0.1" else real(a))
    with pytest.raises(TaskError, match=r"169\.254\.169\.254 is a link-local address"):
        await run_setup([{"type": "download", "parameters": {"files": [{"url": f"{base}/metadata", "path": "x"}]}}],
                        FakeGuest(), strict)
    assert srv.hits == 1


async def test_run_task_setup_gives_each_setup_its_own_folder(tmp_path: Path) -> None:
    task = Task.model_validate({"id": "t", "instruction": "i", "evaluator": {"func": "infeasible"},
                                "config": [{"type": "execute", "parameters": {"command": "x", "stdout": "o.txt"}}]})
    task.bind(domain="os")
    run = RunContext(work_root=tmp_path)
    g1, g2 = FakeGuest(handler=lambda c, s: ExecResult(0, "one")), FakeGuest(handler=lambda c, s: ExecResult(0, "two"))
    c1, c2 = await run_task_setup(task, g1, run), await run_task_setup(task, g2, run)
    assert c1.work_dir != c2.work_dir
    assert (c1.work_dir / "o.txt").read_text() == "one" and (c2.work_dir / "o.txt").read_text() == "two"
    assert run.for_evaluation(task, g2).setup_dir == c2.work_dir


def test_unsupported_features_names_setup_getters_and_metrics_but_not_proxy() -> None:
    task = Task.model_validate({
        "id": "u", "instruction": "i", "proxy": True,
        "config": [{"type": "googledrive", "parameters": {}}, {"type": "sleep", "parameters": {"seconds": 1}}],
        "evaluator": {"func": ["no_such_metric", "compare_table", "exact_match"],
                      "result": [{"type": "vm_file", "path": "a", "dest": "a"}, {"type": "vm_file", "path": "b", "dest": "b"},
                                 {"type": "googledrive_file"}],
                      "expected": [None, None, {"type": "rule", "rules": {"expected": 1}}],
                      "options": [{}, {"rules": [{"type": "sparkline", "sheet_idx0": 0, "sheet_idx1": "EI0"},
                                                 {"type": "sheet_data", "sheet_idx0": 0, "sheet_idx1": "EI0"}]}, {}]},
    })
    assert unsupported_features(task) == ["setup:googledrive", "metric:no_such_metric",
                                          "metric:compare_table[sparkline]", "getter:googledrive_file"]


@pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"OSWorld sample not found at {SAMPLE}")
def test_unsupported_features_on_real_sample_tasks() -> None:
    suite = load_suite(SAMPLE)
    verdicts = {t.id: unsupported_features(t) for t in suite}
    assert verdicts["357ef137-7eeb-4c80-a3bb-0951f26a8aff"] == []  # calc check_cell
    assert verdicts["5812b315-e7bd-4265-b51f-863c02174c28"] == []  # os, postconfig download + execute
    chrome = [v for t, v in verdicts.items() if suite.get(t).domain == "chrome"]
    assert chrome and not any(chrome)  # every Chrome step, getter and metric they name exists
    impress = [v for t, v in verdicts.items() if suite.get(t).domain == "libreoffice_impress"]
    assert impress and not any(impress)  # compare_pptx_files and the Impress checks exist
    json.dumps(verdicts)


class _LateWindowGuest(FakeGuest):
    """A guest whose window appears after `misses` activation attempts (never, with None)."""

    def __init__(self, misses: int | None) -> None:
        super().__init__()
        self.misses = misses
        self.tries = 0

    async def activate_window(self, window_name: str, *, strict: bool = False, by_class: bool = False) -> None:
        self.tries += 1
        if self.misses is None or self.tries <= self.misses:
            raise WindowNotFound(f"guest: POST /setup/activate_window -> HTTP 404: no window matches {window_name!r}")


async def test_activate_window_waits_for_a_window_that_appears_late(tmp_path: Path) -> None:
    guest = _LateWindowGuest(misses=3)
    await run_setup([{"type": "activate_window", "parameters": {"window_name": "Terminal"}}], guest, make_ctx(tmp_path))
    assert guest.tries == 4


async def test_activate_window_that_never_appears_is_a_task_error_not_infrastructure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks.setup_steps as steps

    monkeypatch.setitem(steps.WINDOW_WAIT_S, "config", 0.6)
    guest = _LateWindowGuest(misses=None)
    with pytest.raises(TaskError, match="activate_window 'Terminal': no such window"):
        await run_setup([{"type": "activate_window", "parameters": {"window_name": "Terminal"}}], guest,
                        make_ctx(tmp_path))
    assert guest.tries >= 2  # it retried before giving up


async def test_setup_waits_longer_for_a_window_than_postconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A slow app's first window (VS Code) is waited for in setup; after the agent acted, a missing
    # window is a note after the short wait.
    import benchmarks.setup_steps as steps

    monkeypatch.setitem(steps.WINDOW_WAIT_S, "config", 3.0)
    monkeypatch.setitem(steps.WINDOW_WAIT_S, "postconfig", 0.3)
    step = [{"type": "activate_window", "parameters": {"window_name": "Code"}}]
    late = _LateWindowGuest(misses=6)  # appears after ~1.5 s of polling
    await run_setup(step, late, make_ctx(tmp_path), phase="config")
    assert late.tries == 7
    ctx = make_ctx(tmp_path)
    never = _LateWindowGuest(misses=None)
    await run_setup(step, never, ctx, phase="postconfig")
    assert never.tries <= 3 and "no such window within 0.3 s" in ctx.notes[0]


async def test_activate_window_on_a_dead_guest_stays_infrastructure(tmp_path: Path) -> None:
    class Dead(FakeGuest):
        async def activate_window(self, window_name: str, *, strict: bool = False, by_class: bool = False) -> None:
            raise SandboxError("guest: POST /setup/activate_window got no answer within 30.0s")

    with pytest.raises(SandboxError, match="no answer"):
        await run_setup([{"type": "activate_window", "parameters": {"window_name": "Terminal"}}], Dead(),
                        make_ctx(tmp_path))
