"""`python -m harness bench sandbox`: start N desktop sandboxes concurrently and measure them.

Per sandbox: start-to-ready seconds (container create -> guest /health 200), reset seconds
(recreate: a fresh container ready to use, its start overlapping the old one's removal, as
`SandboxPool.reset` does), resident memory of the idle
sandbox from its cgroup (usage minus page cache), then, with mousepad open in every sandbox (an
empty desktop's accessibility tree is one node), screenshot / accessibility / execute latency:
one unmeasured warm-up call, then `--samples` measured calls, one sandbox at a time so the
numbers are per-sandbox latency, not contention. Every container is removed at the end,
whatever happens (error, Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import anyio

from harness.base.errors import SandboxError

log = logging.getLogger(__name__)
IDLE_CPU_WINDOW_S = 10.0  # idle CPU is measured over this long, all sandboxes at once


def register(bench_subparsers: argparse._SubParsersAction) -> None:
    p = bench_subparsers.add_parser("sandbox", help="start N desktop sandboxes concurrently and measure them")
    p.add_argument("--sessions", type=int, default=4, help="sandboxes started at once (default 4)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON here")
    p.add_argument("--debootstrap", action="store_true", help="build the image on a debootstrap base if missing")
    p.add_argument("--desktop", choices=["osworld", "light"], default="osworld",
                   help="sandbox desktop: osworld (GNOME Shell, default) or light (openbox)")
    p.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=None, help="starts are forks "
                   "of one boot snapshot (DockerSettings.warm_start; default: on for the osworld desktop where "
                   "the host has CRIU); the first start includes booting and snapshotting it")
    p.add_argument("--samples", type=int, default=5, help="measured calls per sandbox and kind (default 5)")
    p.add_argument(
        "--max-starting",
        type=int,
        default=None,
        help="container starts in flight (default: the provider's, as a run's pool: GNOME boots as many as "
        "their start quotas fit in the host's cores, light ones one per core)",
    )
    p.add_argument(
        "--compare-reset",
        type=int,
        metavar="ROUNDS",
        help="instead: time recreate vs an in-place reset and check whether in-place restores the state",
    )
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from harness.base.aio import run

    if args.sessions < 1 or args.samples < 1 or (args.max_starting is not None and args.max_starting < 1):
        print("error: --sessions, --samples and --max-starting must be >= 1", file=sys.stderr)
        return 2
    if args.compare_reset:
        report = run(_until_signal, compare_reset, args.compare_reset, args.debootstrap)
        if report is None:
            return 130
        print(json.dumps(report, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        return 0
    result = run(_until_signal, bench_sandbox, args.sessions, args.samples, args.max_starting, args.debootstrap,
                 args.desktop, args.warm_start)
    if result is None:
        print("interrupted: every bench container was removed", file=sys.stderr)
        return 130
    print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result["summary"], indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0 if result["summary"]["failures"] == 0 else 1


async def _until_signal(fn: Any, *args: Any) -> Any:
    """Run fn(*args); SIGINT or SIGTERM cancels it (cleanup runs) and the result is None."""
    result = None
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    tg.cancel_scope.cancel()
                    return

        async def main() -> None:
            nonlocal result
            result = await fn(*args)
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        tg.start_soon(main)
    return result


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in [0, 100]); None for no values."""
    if not values:
        return None
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _p(values: list[float], digits: int) -> dict[str, float | None]:
    r = {"p50": percentile(values, 50), "p95": percentile(values, 95)}
    return {k: None if v is None else round(v, digits) for k, v in r.items()}


async def bench_sandbox(sessions: int, samples: int = 5, max_starting: int | None = None, debootstrap: bool = False,
                        desktop: str = "osworld", warm_start: bool | None = None) -> dict[str, Any]:
    from vm.docker import DockerProvider, DockerSandbox, DockerSettings, gc_containers
    from vm.image.build import ensure_image
    from vm.pool import starts_in_flight

    tag = await ensure_image(debootstrap=True if debootstrap else None)
    run_id = f"bench-{secrets.token_hex(4)}"
    m: dict[str, list[float]] = {k: [] for k in ("start", "reset", "stop", "screenshot", "accessibility", "execute", "rss", "rss_app", "cpu")}
    errors: list[str] = []
    concurrent_observe_s: float | None = None
    boxes: list[DockerSandbox] = []
    forked = 0  # starts that were forks of the boot snapshot (warm start)
    settings = DockerSettings(image=tag, desktop=desktop, warm_start=warm_start)  # type: ignore[arg-type]
    warm: dict[str, Any] = {"on": settings.warm_starts(), "by_default": warm_start is None}

    def failed(what: str, e: BaseException) -> None:
        errors.append(f"{what}: {e}")
        log.warning("%s failed: %s", what, e)

    try:
        async with DockerProvider(settings, run_id=run_id) as provider:
            max_starting = max_starting or starts_in_flight(provider, sessions)  # as a run's pool
            limiter = anyio.CapacityLimiter(max_starting)
            print(f"starting {sessions} sandboxes of {tag}, {desktop} desktop{', warm start' if warm['on'] else ''} "
                  f"({max_starting} starts in flight) ...",
                  flush=True)

            async def start_one(i: int) -> None:
                async with limiter:
                    try:
                        box = await provider.start()
                    except SandboxError as e:
                        failed(f"start #{i}", e)
                        return
                nonlocal forked
                boxes.append(box)
                forked += "forked_from" in box.info.extra
                m["start"].append(box.start_s or 0.0)

            t0 = anyio.current_time()
            async with anyio.create_task_group() as tg:
                for i in range(sessions):
                    tg.start_soon(start_one, i)
            all_ready_s = anyio.current_time() - t0
            print(f"{len(boxes)}/{sessions} ready in {all_ready_s:.1f}s", flush=True)

            async def idle_cpu() -> None:
                """Each idle sandbox's CPU over IDLE_CPU_WINDOW_S, in % of a core (cgroup usage)."""

                async def read_all() -> tuple[float, dict[int, float]]:
                    seen: dict[int, float] = {}

                    async def read(i: int, box: DockerSandbox) -> None:
                        try:
                            cpu = await provider.cpu_seconds(box)
                        except Exception as e:
                            failed(f"CPU time of {box.name}", e)
                            return
                        if cpu is not None:
                            seen[i] = cpu

                    t = anyio.current_time()
                    async with anyio.create_task_group() as tg:
                        for i, box in enumerate(boxes):
                            tg.start_soon(read, i, box)
                    return (t + anyio.current_time()) / 2, seen  # the reads' midpoint

                t0, before = await read_all()
                await anyio.sleep(IDLE_CPU_WINDOW_S)
                t1, after = await read_all()
                m["cpu"].extend(100 * (after[i] - before[i]) / (t1 - t0) for i in before.keys() & after.keys())

            async def memory(key: str) -> None:
                for box in boxes:
                    try:
                        rss = await provider.memory_bytes(box)
                        if rss is not None:
                            m[key].append(rss / 2**20)
                    except Exception as e:
                        failed(f"memory of {box.name}", e)

            await memory("rss")  # idle: started, nothing opened yet
            await idle_cpu()

            # Latency on an empty desktop flatters accessibility (the tree is one node): open an
            # editor in every sandbox first, as a task's setup would, and measure with it open.
            print(f"opening mousepad in {len(boxes)} sandboxes, then measuring latency ...", flush=True)

            async def open_editor(box: DockerSandbox) -> None:
                try:
                    await box.guest.launch(["mousepad"])
                    with anyio.fail_after(60):
                        while "Mousepad" not in (await box.guest.accessibility() or ""):  # noqa: ASYNC110
                            await anyio.sleep(0.2)
                except (SandboxError, TimeoutError) as e:
                    failed(f"opening mousepad in {box.name}", e)

            async with anyio.create_task_group() as tg:
                for box in boxes:
                    tg.start_soon(open_editor, box)

            for box in boxes:
                ops = {
                    "screenshot": box.guest.screenshot,
                    "accessibility": box.guest.accessibility,
                    "execute": lambda b=box: b.run(["true"], timeout=30),
                }
                for kind, op in ops.items():
                    try:
                        await op()  # warm-up: first AT-SPI walk, first process spawn
                        for _ in range(samples):
                            s = anyio.current_time()
                            result = await op()
                            m[kind].append((anyio.current_time() - s) * 1000)
                            if kind == "execute" and not result.ok:
                                raise SandboxError(f"`true` returned {result.returncode}: {result.error}")
                    except SandboxError as e:
                        failed(f"{kind} on {box.name}", e)

            # All sandboxes observed at once: what an engine driving every sandbox sees.
            async def observe_one(box: DockerSandbox) -> None:
                try:
                    await box.observe()
                except SandboxError as e:
                    failed(f"concurrent observe on {box.name}", e)

            if boxes:
                s = anyio.current_time()
                async with anyio.create_task_group() as tg:
                    for box in boxes:
                        tg.start_soon(observe_one, box)
                concurrent_observe_s = anyio.current_time() - s

            await memory("rss_app")  # for the table only: the footprint with an editor open

            print(f"resetting {len(boxes)} sandboxes (remove + start fresh) ...", flush=True)

            async def stop(box: DockerSandbox) -> None:
                s = anyio.current_time()
                await provider.stop(box)
                m["stop"].append(anyio.current_time() - s)

            async def reset_one(i: int, tg: Any) -> None:
                # As SandboxPool.reset does: the old container's removal overlaps the new start.
                async with limiter:
                    s = anyio.current_time()
                    tg.start_soon(stop, boxes[i])
                    try:
                        boxes[i] = await provider.start()
                    except SandboxError as e:
                        failed(f"reset of sandbox #{i}", e)
                        return
                    m["reset"].append(anyio.current_time() - s)

            async with anyio.create_task_group() as tg:
                for i in range(len(boxes)):
                    tg.start_soon(reset_one, i, tg)
            if warm["on"]:  # whether the starts really were forks, and if not, why
                warm.update(forked_starts=forked, boot_snapshots=provider.warm.snapshots_taken,
                            off=provider.warm.off)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(120):
            left = await gc_containers(run_id)  # belt and braces: the provider removed its own
            if left:
                log.warning("removed %d leftover bench containers", left)

    summary = {
        "sessions": sessions,
        "desktop": desktop,
        "warm_start": warm,
        "start_s": _p(m["start"], 3),
        "reset_s": _p(m["reset"], 3),
        "screenshot_ms": _p(m["screenshot"], 1),
        "accessibility_ms": _p(m["accessibility"], 1),
        "execute_ms": _p(m["execute"], 1),
        "rss_mb": {
            "p50": None if not m["rss"] else round(percentile(m["rss"], 50) or 0, 1),
            "max": None if not m["rss"] else round(max(m["rss"]), 1),
        },
        "idle_cpu_pct": _round({"p50": percentile(m["cpu"], 50), "max": max(m["cpu"], default=None)}, 2),
        "failures": len(errors),
    }
    return {
        "summary": summary,
        "image": tag,
        "samples": samples,
        "max_starting": max_starting,
        "all_ready_s": round(all_ready_s, 2),
        "stop_s": _p(m["stop"], 3),
        "rss_app_mb": {"p50": percentile(m["rss_app"], 50), "max": max(m["rss_app"], default=None)},
        "concurrent_observe_s": None if concurrent_observe_s is None else round(concurrent_observe_s, 2),
        "errors": errors,
    }


def print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    s = result["summary"]
    warm = s["warm_start"]
    how = (f", warm start ({warm.get('forked_starts')} forked starts, {warm.get('boot_snapshots')} boot snapshot"
           f"{'; off: ' + warm['off'] if warm.get('off') else ''})") if warm["on"] else ", fresh starts"
    # The targets (24) per desktop: GNOME's boot and memory are the osworld desktop's price.
    start_target, memory_target = ("p50 <= 2.5", "p50 <= 400") if s["desktop"] == "osworld" else ("p50 <= 1.5", "p50 <= 250")
    table = Table(title=f"bench sandbox: {s['sessions']} sessions, image {result['image']}{how}")
    table.add_column("metric")
    table.add_column("p50", justify="right")
    table.add_column("p95 / max", justify="right")
    table.add_column("target", justify="right")
    rows = [
        ("start-to-ready (s)", s["start_s"], "p95", start_target),
        ("reset = recreate (s)", s["reset_s"], "p95", ""),
        ("  of which removal, overlapped (s)", result["stop_s"], "p95", ""),
        ("screenshot (ms)", s["screenshot_ms"], "p95", "p50 <= 150"),
        ("accessibility (ms)", s["accessibility_ms"], "p95", "p50 <= 500"),
        ("execute `true` (ms)", s["execute_ms"], "p95", ""),
        ("idle memory (MB)", s["rss_mb"], "max", memory_target),
        (f"idle CPU, % of a core ({IDLE_CPU_WINDOW_S:.0f} s)", s["idle_cpu_pct"], "max", "<= 3"),
        ("memory, mousepad open (MB)", _round(result["rss_app_mb"], 1), "max", ""),
    ]
    for name, vals, hi, target in rows:
        table.add_row(name, _fmt(vals["p50"]), _fmt(vals[hi]), target)
    table.add_row("failures", str(s["failures"]), "", "0")
    console = Console()
    console.print(table)
    console.print(
        f"all {s['sessions']} ready after {result['all_ready_s']}s with {result['max_starting']} starts in flight; "
        f"all observed at once (screenshot + accessibility) in {result['concurrent_observe_s']}s"
    )
    for err in result["errors"][:10]:
        console.print(f"[red]failure:[/red] {err}", markup=True, highlight=False)


def _round(d: dict[str, float | None], digits: int) -> dict[str, float | None]:
    return {k: None if v is None else round(v, digits) for k, v in d.items()}


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


# --- recreate vs in-place reset (docs/design/pool.md) ----------------------------------------------

# What a task may leave behind, in kinds: an app (mousepad with typed text), files in $HOME and
# /tmp, and X server state (the root window colour, as a wallpaper change would do).
_DIRTY = """
mousepad >/dev/null 2>&1 &
for i in $(seq 50); do wmctrl -l | grep -q Mousepad && break; sleep 0.1; done
xdotool type --delay 1 'unsaved work'
mkdir -p ~/Desktop && echo report > ~/Desktop/report.txt && echo junk > /tmp/junk.txt
xsetroot -solid '#aa0000'
"""

# In-place reset: kill every user process that was not there at the clean snapshot, restore
# $HOME from a tarball taken at the snapshot, remove /tmp entries that were not there.
_SNAPSHOT = """
for i in $(seq 100); do wmctrl -m >/dev/null 2>&1 && break; sleep 0.05; done  # the desktop has settled
ps -u user -o pid= | tr -d ' ' | sort > /tmp/.clean-pids
ls -A /tmp | sort > /tmp/.clean-tmp
tar -C /home/user -cf /tmp/.clean-home.tar .
"""
_INPLACE = """
for pid in $(ps -u user -o pid= | tr -d ' ' | sort | comm -23 - /tmp/.clean-pids); do
    [ "$pid" = $$ ] || kill -9 "$pid" 2>/dev/null
done
find /home/user -mindepth 1 -delete && tar -C /home/user -xf /tmp/.clean-home.tar
ls -A /tmp | sort | comm -23 - /tmp/.clean-tmp | grep -v '^.clean-' | sed 's|^|/tmp/|' | xargs -r rm -rf
for i in $(seq 50); do [ -z "$(wmctrl -l)" ] && break; sleep 0.05; done
"""
# The state compared: user processes (by name), files under $HOME and /tmp (minus the session's
# own logs and sockets in the runtime dir), windows, root window properties, and the screen itself
# (cursor parked first).
_FINGERPRINT = """
xdotool mousemove 5 5
echo procs $(ps -u user -o comm= | sort | grep -v -e '^ps$' -e '^sh$' -e '^sort$' -e '^bash$' | sha256sum)
echo files $(find /home/user /tmp -xdev ! -name '.clean-*' ! -path '/tmp/runtime-user/*' -printf '%p %s\n' 2>/dev/null | sort | sha256sum)
echo windows $(wmctrl -l | sha256sum)
echo rootprops $(xprop -root | grep -v -e _NET_ACTIVE_WINDOW -e _NET_CLIENT_LIST | sha256sum)
"""


async def _fingerprint(box: Any) -> dict[str, str]:
    import hashlib

    out = (await box.run(_FINGERPRINT, shell=True)).output
    prints = {line.split(" ", 1)[0]: line.split(" ", 2)[1] for line in out.splitlines() if " " in line}
    prints["screen"] = hashlib.sha256(await box.guest.screenshot()).hexdigest()
    return prints


async def compare_reset(rounds: int, debootstrap: bool = False) -> dict[str, Any]:
    """Time both resets over `rounds` and say which parts of the state each one restores."""
    from vm.docker import DockerProvider, DockerSettings
    from vm.image.build import ensure_image

    tag = await ensure_image(debootstrap=True if debootstrap else None)
    recreate_s: list[float] = []
    inplace_s: list[float] = []
    restored: dict[str, int] = {}
    async with DockerProvider(DockerSettings(image=tag), run_id=f"bench-reset-{secrets.token_hex(3)}") as provider:
        box = await provider.start()
        await box.run(_SNAPSHOT, shell=True)
        clean = await _fingerprint(box)
        for _ in range(rounds):
            await box.run(_DIRTY, shell=True)
            s = anyio.current_time()
            result = await box.run(_INPLACE, shell=True)
            inplace_s.append(anyio.current_time() - s)
            if not result.ok:
                raise SandboxError(f"in-place reset script failed: {result.error.strip()[-300:]}")
            after = await _fingerprint(box)
            for key, value in clean.items():
                restored[key] = restored.get(key, 0) + (after.get(key) == value)

            s = anyio.current_time()
            await provider.stop(box)
            box = await provider.start()
            recreate_s.append(anyio.current_time() - s)
            await box.run(_SNAPSHOT, shell=True)
            fresh = await _fingerprint(box)
            restored["recreate_screen"] = restored.get("recreate_screen", 0) + (fresh["screen"] == clean["screen"])
            clean = fresh
    return {
        "rounds": rounds,
        "recreate_s": _p(recreate_s, 3),
        "inplace_s": _p(inplace_s, 3),
        "inplace_restored_of_rounds": restored,
    }
