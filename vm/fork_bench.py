"""`python -m harness bench fork`: where forking a live desktop works, app by app, and what it costs.

Per app: start a sandbox, open the app (with typed, unsaved input where the app has a text field),
wait until the screen is still, take a screenshot, snapshot the sandbox (seconds, MB), then fork it
`--forks` times, one after the other. Per fork: fork seconds (create -> guest answering), the
screenshot right after the fork compared with the one at snapshot time (pixels that differ), and
whether the app is alive: it takes input and, where it can save, saves and the file reads back
with both the pre-snapshot input and the fork's own. `--side-by-side N`: N forks of the text
editor's snapshot at once, each saving its own file. An app whose snapshot or fork fails is listed
with CRIU's reason: tree search replays for such a task (state_restore=auto). `--desktop`: the
osworld desktop (GNOME Shell, the default sandbox) or the light one (Xvfb + openbox).

Prints a table and, with --json, the raw figures. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio

from harness.base.errors import SandboxError

Alive = Callable[[Any, int], Awaitable[str]]  # (sandbox, fork number) -> "" when alive, else what failed


@dataclass(frozen=True)
class AppCase:
    name: str
    launch: list[str]
    window: str  # xdotool --class pattern of its main window
    before: list[str]  # pyautogui actions run before the snapshot (unsaved input)
    alive: Alive
    start_s: float = 90.0


async def _read(box: Any, path: str) -> str:
    data = await box.download(path)
    return data.decode(errors="replace") if data is not None else ""


async def _type_and_save(box: Any, i: int, path: str, *, text: str, saved_has: list[str]) -> str:
    await box.execute(f"pyautogui.typewrite({text!r}, interval=0.01)")
    await box.execute("pyautogui.hotkey('ctrl', 's')")
    for _ in range(20):
        got = await _read(box, path)
        if all(s in got for s in saved_has):
            return ""
        await anyio.sleep(0.5)
    return f"{path} holds {got[:80]!r} after ctrl+s, expected {saved_has}"


async def _editor_alive(box: Any, i: int) -> str:
    return await _type_and_save(box, i, "/home/user/fork.txt", text=f" fork{i}",
                                saved_has=["typed before the snapshot", f"fork{i}"])


async def _terminal_alive(box: Any, i: int) -> str:
    await box.execute(f"pyautogui.typewrite('echo fork{i} >> /home/user/term.txt\\n', interval=0.01)")
    for _ in range(20):
        got = await _read(box, "/home/user/term.txt")
        if f"fork{i}" in got:
            return ""
        await anyio.sleep(0.5)
    return "the terminal did not run the typed command"


async def _calc_alive(box: Any, i: int) -> str:
    await box.execute(f"pyautogui.typewrite('fork{i}\\n', interval=0.01)")
    await box.execute("pyautogui.hotkey('ctrl', 's')")
    await anyio.sleep(2.0)
    await box.execute("pyautogui.typewrite('/home/user/fork.ods\\n', interval=0.01)")
    for _ in range(30):
        got = await box.run("unzip -p /home/user/fork.ods content.xml 2>/dev/null", shell=True)
        if f"fork{i}" in got.output and "snapshot" in got.output:
            return ""
        await anyio.sleep(0.5)
    return "the spreadsheet was not saved with the fork's cell"


def _window_alive(klass: str) -> Alive:
    async def alive(box: Any, i: int) -> str:
        # No file to save without dialogs: the window is mapped and a keypress changes the screen.
        before = await box.guest.screenshot()
        await box.execute("pyautogui.press('f1')")
        await anyio.sleep(2.0)
        after = await box.guest.screenshot()
        found = await box.run(["xdotool", "search", "--onlyvisible", "--class", klass])
        if not found.output.strip():
            return f"no visible {klass} window"
        return "" if diff_pixels(before, after)[0] else "the screen did not change on a keypress"
    return alive


def _tunnel_alive(port: int, path: str) -> Alive:
    async def alive(box: Any, i: int) -> str:
        try:
            status, _ = await box.tunnel_request(port, "GET", path, timeout=10.0)
        except SandboxError as e:
            return f"port {port}: {e}"
        return "" if status < 500 else f"port {port}{path} answered {status}"
    return alive


CASES = {
    "terminal": AppCase("terminal", ["xfce4-terminal", "--working-directory=/home/user"], "xfce4-terminal",
                        ["pyautogui.typewrite('echo typed-before-snapshot', interval=0.01)"], _terminal_alive),
    "text_editor": AppCase("text_editor", ["mousepad", "/home/user/fork.txt"], "mousepad",
                           ["pyautogui.typewrite('typed before the snapshot', interval=0.01)"], _editor_alive),
    "libreoffice": AppCase("libreoffice", ["localc", "--norestore"], "libreoffice",
                           ["pyautogui.typewrite('snapshot\\n', interval=0.01)"], _calc_alive),
    "gimp": AppCase("gimp", ["gimp", "--no-splash"], "gimp", [], _window_alive("gimp"), start_s=180.0),
    "vlc": AppCase("vlc", ["vlc"], "vlc", [], _tunnel_alive(8080, "/"), start_s=60.0),
    "thunderbird": AppCase("thunderbird", ["thunderbird"], "thunderbird", [], _window_alive("thunderbird"),
                           start_s=120.0),
    "chromium": AppCase("chromium", ["google-chrome", "--remote-debugging-port=9222", "about:blank"], "chromium|google-chrome",
                        [], _tunnel_alive(9222, "/json/version"), start_s=90.0),
}


_CRIU_STAMP = re.compile(rb"^\((\d+\.\d+)\)", re.M)


def criu_restore_times(container_id: str, since: float) -> dict[str, float]:
    """Where a fork's seconds went, from CRIU's restore log (Docker's own containerd keeps it in the
    task's work folder while the container runs): `criu_start_s` from the fork call to CRIU's start,
    `criu_s` CRIU's restore itself (its last timestamp). Empty when the log is not there."""
    found = list(Path("/run/docker/containerd/daemon").glob(f"io.containerd.runtime.v2.task/*/{container_id}/work/restore.log"))
    if not found:
        return {}
    try:
        stamps = _CRIU_STAMP.findall(found[0].read_bytes())
        end = found[0].stat().st_mtime
    except OSError:
        return {}
    if not stamps:
        return {}
    criu = float(stamps[-1])
    return {"criu_start_s": round(end - criu - since, 3), "criu_s": round(criu, 3)}


def diff_pixels(a: bytes, b: bytes) -> tuple[int, tuple[int, int, int, int] | None]:
    """(pixels that differ, their bounding box) between two PNG screenshots."""
    from PIL import Image, ImageChops

    x, y = Image.open(io.BytesIO(a)).convert("RGB"), Image.open(io.BytesIO(b)).convert("RGB")
    if x.size != y.size:
        return x.size[0] * x.size[1], None
    delta = ImageChops.difference(x, y).convert("L").point(lambda v: 255 if v else 0)
    return sum(delta.histogram()[255:]), delta.getbbox()


def _in_clock(bbox: tuple[int, int, int, int], width: int) -> bool:
    """Inside the osworld desktop's top-bar clock: the date and time centred in the 32 px bar."""
    return bbox[3] <= 36 and bbox[0] >= width * 0.39 and bbox[2] <= width * 0.61


def same_screen(a: bytes, b: bytes, *, clock: bool = False) -> bool:
    """Equal screenshots, a blinking text caret aside (at most 3 px wide and 40 px tall) and, with
    `clock` (the osworld desktop), the top bar's clock. Xvfb screenshots carry no mouse pointer."""
    from PIL import Image

    pixels, bbox = diff_pixels(a, b)
    if not pixels:
        return True
    if bbox is None:
        return False
    if clock and _in_clock(bbox, Image.open(io.BytesIO(a)).size[0]):
        return True
    return bbox[2] - bbox[0] <= 3 and bbox[3] - bbox[1] <= 40


async def still_screen(box: Any, *, timeout: float = 30.0) -> bytes:
    """A screenshot once two taken a second apart are the same (the app finished drawing)."""
    last = await box.guest.screenshot()
    deadline = anyio.current_time() + timeout
    while anyio.current_time() < deadline:
        await anyio.sleep(1.0)
        shot = await box.guest.screenshot()
        if shot == last:
            return shot
        last = shot
    return last


async def open_app(box: Any, case: AppCase) -> None:
    await box.guest.launch(case.launch)
    found = await box.run(["timeout", str(int(case.start_s)), "xdotool", "search", "--sync", "--onlyvisible",
                           "--class", case.window], timeout=case.start_s + 10)
    if not found.ok:
        raise SandboxError(f"{case.name}: no {case.window} window within {case.start_s:.0f}s")
    await still_screen(box)
    for action in case.before:
        await box.execute(action)


def _has_clock(provider: Any) -> bool:
    return getattr(provider.profile, "desktop", None) == "osworld"


async def measure_app(provider: Any, case: AppCase, forks: int) -> dict[str, Any]:
    out: dict[str, Any] = {"app": case.name}
    box = await provider.start()
    made: list[Any] = []
    try:
        await open_app(box, case)
        shot = await still_screen(box)
        try:
            snap = await provider.snapshot(box)
        except SandboxError as e:
            out["error"] = f"snapshot: {e}"
            return out
        out.update(snapshot_s=round(snap.seconds, 3), size_mb=round(snap.size_bytes / 2**20, 1))
        rows = []
        for i in range(forks):
            t0, wall0 = time.monotonic(), time.time()
            try:
                fork = await provider.fork(snap)
            except SandboxError as e:
                out["error"] = f"fork: {e}"
                break
            made.append(fork)
            seconds = time.monotonic() - t0
            after = await fork.guest.screenshot()
            pixels, box_ = diff_pixels(shot, after)
            why = await case.alive(fork, i)
            rows.append({"fork_s": round(seconds, 3), **criu_restore_times(fork.container_id, wall0),
                         "diff_pixels": pixels, "diff_box": box_,
                         "same_screen": same_screen(shot, after, clock=_has_clock(provider)), "alive": not why, "why": why})
            await provider.stop(fork)
        out["forks"] = rows
        out["source_alive"] = await box.alive()
        await provider.drop(snap)
    finally:
        with anyio.CancelScope(shield=True):
            for f in made:
                await provider.stop(f)
            await provider.stop(box)
    return out


async def side_by_side(provider: Any, n: int) -> dict[str, Any]:
    """n forks of one text-editor snapshot alive at once; each types and saves its own file."""
    case = CASES["text_editor"]
    box = await provider.start()
    forks: list[Any] = []
    try:
        await open_app(box, case)
        await still_screen(box)
        snap = await provider.snapshot(box)
        times = []
        for _ in range(n):
            t0 = time.monotonic()
            forks.append(await provider.fork(snap))
            times.append(time.monotonic() - t0)
        results: dict[int, str] = {}

        async def one(i: int, fork: Any) -> None:
            results[i] = await case.alive(fork, i)

        async with anyio.create_task_group() as tg:
            for i, fork in enumerate(forks):
                tg.start_soon(one, i, fork)
        # Each fork's file holds its own number only: the forks share nothing.
        texts = [await _read(f, "/home/user/fork.txt") for f in forks]
        own = sum(1 for i, t in enumerate(texts) if f"fork{i}" in t and sum(f"fork{j}" in t for j in range(n)) == 1)
        await provider.drop(snap)
        return {"forks": n, "fork_s": [round(t, 3) for t in times], "saved_own_file": own,
                "failures": {i: w for i, w in results.items() if w}}
    finally:
        with anyio.CancelScope(shield=True):
            for f in forks:
                await provider.stop(f)
            await provider.stop(box)


async def run_bench(apps: list[str], forks: int, side: int,
                    desktop: Literal["osworld", "light"] = "osworld") -> dict[str, Any]:
    from vm.docker import DockerProvider, DockerSettings

    async with DockerProvider(DockerSettings(desktop=desktop)) as provider:
        why = await provider.fork_unavailable()
        if why:
            return {"unavailable": why}
        report: dict[str, Any] = {"desktop": desktop, "apps": []}
        for name in apps:
            try:
                report["apps"].append(await measure_app(provider, CASES[name], forks))
            except SandboxError as e:
                report["apps"].append({"app": name, "error": str(e)})
            _print_row(report["apps"][-1])
        if side:
            try:
                report["side_by_side"] = await side_by_side(provider, side)
            except SandboxError as e:
                report["side_by_side"] = {"forks": side, "error": str(e)}
            print(json.dumps(report["side_by_side"]))
        return report


def _print_row(row: dict[str, Any]) -> None:
    forks = row.get("forks") or []
    times = [f["fork_s"] for f in forks]
    p50 = f"{statistics.median(times):.2f}" if times else "-"
    starts, criu = [f["criu_start_s"] for f in forks if "criu_s" in f], [f["criu_s"] for f in forks if "criu_s" in f]
    split = (f" (CRIU starts at {statistics.median(starts):.2f}s, restores in {statistics.median(criu):.2f}s)"
             if criu else "")
    diff = max((f["diff_pixels"] for f in forks), default="-")
    same = f"{sum(f['same_screen'] for f in forks)}/{len(forks)}" if forks else "-"
    alive = f"{sum(f['alive'] for f in forks)}/{len(forks)}" if forks else "-"
    print(f"{row['app']:<12} snapshot {row.get('snapshot_s', '-')!s:>6}s {row.get('size_mb', '-')!s:>6} MB  "
          f"fork p50 {p50:>5}s{split}  same screen {same} (max diff px {diff!s})  alive {alive}"
          + (f"  ERROR {row['error'][:300]}" if row.get("error") else "")
          + "".join(f"  [{f['why']}]" for f in forks if f["why"]), flush=True)


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    p = bench_subparsers.add_parser("fork", help="snapshot and fork a live desktop per app: time, size, identical, alive")
    p.add_argument("--apps", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    p.add_argument("--forks", type=int, default=5, help="forks per app, one after the other (default 5)")
    p.add_argument("--side-by-side", type=int, default=0, metavar="N",
                   help="also: N text-editor forks of one snapshot at once, each saving its own file")
    p.add_argument("--desktop", choices=["osworld", "light"], default="osworld",
                   help="osworld: GNOME Shell (the default sandbox); light: Xvfb + openbox (default osworld)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from harness.base.aio import run

    apps = [a.strip() for a in args.apps.split(",") if a.strip()]
    unknown = [a for a in apps if a not in CASES]
    if unknown or args.forks < 1:
        print(f"error: --apps: unknown {unknown} (expected {', '.join(CASES)}); --forks must be >= 1", file=sys.stderr)
        return 2
    report = run(run_bench, apps, args.forks, args.side_by_side, args.desktop)
    if report.get("unavailable"):
        print(f"forks are off here: {report['unavailable']}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0
