"""The same run on a Ray cluster (harness/cluster, docs/design/cluster.md).

Every cluster here is a local multi-node Ray cluster on loopback (harness.cluster.local): several
raylets with their own `cua_sandbox` resources, as Ray's own tests build them. The harness runs
as a subprocess that connects with `--ray ADDRESS`, exactly as a user's head process would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import harness

from benchmarks.sim_suite import write_sim_suite

REPO = Path(__file__).resolve().parents[2]

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")


from harness.cluster.local import local_cluster  # noqa: E402

pytestmark = pytest.mark.ray


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def results(run_dir: Path) -> dict[tuple[str, str], dict]:
    return {(p.parent.parent.name, p.parent.name): json.loads(p.read_text()) for p in run_dir.glob("*/*/result.json")}


SUMMARY_KEYS = ("total", "done", "success_rate", "solved", "by_domain", "errors", "eval_errors", "infra_failures")


def summary(run_dir: Path) -> dict:
    s = json.loads((run_dir / "summary.json").read_text())
    return {k: s[k] for k in SUMMARY_KEYS}


def each_task_finished_once(run_dir: Path) -> Counter:
    return Counter(tuple(e["task"]) if isinstance(e.get("task"), list) else (e.get("domain"), e.get("task_id"))
                   for e in events(run_dir) if e["event"] == "task_finished")


def start_run_until(run_args: list[str], run_dir: Path, address: str, results_at_least: int, *,
                    within_s: float = 120) -> subprocess.Popen:
    """`harness run RUN_ARGS --ray ADDRESS`, returned once `results_at_least` tasks have results."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", *run_args, "--ray", address, "--run-dir", str(run_dir), "-q"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + within_s
    while len(list(run_dir.glob("*/*/result.json"))) < results_at_least:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {results_at_least} results within {within_s:.0f} s: {proc.communicate()[1][-2000:]}")
        time.sleep(0.2)
    return proc


def sim_oracle(suite: Path) -> list[str]:
    return ["--benchmark", str(suite), "--agent", "oracle", "--provider", "sim", "--sim-latency-ms", "300"]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def cluster4():
    with local_cluster([{"cua_sandbox": 2}] * 4) as cluster:
        yield cluster


def test_sim_run_across_four_nodes_scores_every_task_once_like_a_local_run(tmp_path: Path, cluster4) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=48, steps=3, domains=4)
    common = ["--benchmark", str(suite), "--agent", "oracle", "--provider", "sim", "--sim-latency-ms", "20", "-q"]
    local = harness("run", *common, "--concurrency", "8", "--run-dir", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr[-2000:]
    remote = harness("run", *common, "--ray", cluster4.address, "--run-dir", str(tmp_path / "ray"))
    assert remote.returncode == 0, remote.stderr[-2000:]

    assert summary(tmp_path / "ray") == summary(tmp_path / "local")
    assert summary(tmp_path / "ray")["done"] == 48 and summary(tmp_path / "ray")["success_rate"] == 1.0
    ray_results, local_results = results(tmp_path / "ray"), results(tmp_path / "local")
    assert {k: r["score"] for k, r in ray_results.items()} == {k: r["score"] for k, r in local_results.items()}
    finished = each_task_finished_once(tmp_path / "ray")
    assert len(finished) == 48 and set(finished.values()) == {1}
    # Placed across the cluster, and streamed back: the head wrote every step's screenshot and line.
    assert len({r["node"] for r in ray_results.values()}) >= 3
    for key in list(ray_results)[:5]:
        folder = tmp_path / "ray" / key[0] / key[1]
        lines = (folder / "traj.jsonl").read_text().splitlines()
        assert len(lines) == ray_results[key]["steps"] == 4
        assert all((folder / json.loads(line)["screenshot_file"]).is_file() for line in lines
                   if json.loads(line)["screenshot_file"])
        assert (folder / "step_0.png").read_bytes()[:4] == b"\x89PNG"


TASKS_KILL = 72


def test_node_killed_mid_run_loses_nothing_and_a_returning_node_gets_a_worker(tmp_path: Path) -> None:
    # Enough work that the node joining after the kill (a raylet and a worker to start on a loaded
    # 2-core machine: ~10 s) still finds tasks left: 30 tasks were not, once, in CI.
    suite = write_sim_suite(tmp_path / "suite", tasks=TASKS_KILL, steps=3, domains=3)
    run_dir = tmp_path / "run"
    with local_cluster([{"cua_sandbox": 2}] * 3) as cluster:
        proc = start_run_until(sim_oracle(suite), run_dir, cluster.address, 4)
        try:
            killed = cluster.node_ids[0]
            cluster.kill_node(0)  # its raylet and worker die with attempts in flight
            returned = cluster.add_node({"cua_sandbox": 2})  # a node joins (or comes back)
            _out, err = proc.communicate(timeout=240)
        finally:
            stop(proc)
    assert proc.returncode == 0, err[-2000:]
    done = results(run_dir)
    assert len(done) == TASKS_KILL and all(r["score"] == 1.0 and not r.get("error") for r in done.values())
    finished = each_task_finished_once(run_dir)
    assert len(finished) == TASKS_KILL and set(finished.values()) == {1}
    infra = [e for e in events(run_dir) if e["event"] == "infra_failure"]
    assert infra, "the killed node's in-flight attempts must be journaled as infrastructure failures"
    assert all("died" in e.get("error", "") or "node" in e.get("error", "") for e in infra)
    nodes = Counter(r["node"] for r in done.values())
    # The killed node had attempts in flight: their infrastructure failures name it.
    assert any(killed[:8] in e.get("error", "") for e in infra), [e.get("error") for e in infra]
    assert summary(run_dir)["infra_failures"] == len(infra)
    assert returned[:12] in nodes, f"the node that joined mid-run got no work: {nodes}"


def test_run_without_ray_imports_no_ray(tmp_path: Path) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=3, steps=1, domains=1)
    code = (
        "import sys, anyio\n"
        "from harness.config import make_config\n"
        "from harness.runner import execute_run\n"
        f"cfg = make_config({{'benchmark': {str(suite)!r}, 'agent': 'oracle', 'provider': 'sim', "
        f"'run_dir': {str(tmp_path / 'run')!r}, 'quiet': True}})\n"
        "rc = anyio.run(lambda: execute_run(cfg, show_summary=False))\n"
        "print('RC', rc, 'RAY', sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "RC 0 RAY []" in proc.stdout, proc.stdout + proc.stderr[-2000:]


@pytest.mark.parametrize("address", ["127.0.0.1:1", "not an address", "local:0"])
def test_bad_ray_address_is_one_line_before_any_task(tmp_path: Path, address: str) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=2, steps=1, domains=1)
    run_dir = tmp_path / "run"
    started = time.monotonic()
    proc = harness("run", "--benchmark", str(suite), "--agent", "oracle", "--provider", "sim", "--ray", address,
                   "--run-dir", str(run_dir), "-q", timeout=60)
    assert proc.returncode != 0
    assert "--ray" in proc.stderr and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.strip()]) == 1, proc.stderr
    assert not run_dir.exists()
    assert time.monotonic() - started < 30


# Fast oracle tasks from several domains of the built-in suite (the full 67-task run: cluster.md).
DOCKER_SUBSET = ["19de64a9-7b78-53ea-92fb-3f95a170afe3", "3b66f192-0750-502d-9107-3dc8d218958c",
                 "fa26b291-3017-5bde-924b-cd3d77501f3e", "d84e9d5e-362b-55cc-a73f-51c8abf17fed",
                 "beebf27a-3dbe-5b77-a00d-65f174b05bb5"]


@pytest.mark.docker
def test_oracle_on_real_sandboxes_across_two_nodes_matches_a_local_run(tmp_path: Path, desktop_image: str) -> None:
    common = ["--benchmark", "desktop-basics", "--agent", "oracle", "--tasks", ",".join(DOCKER_SUBSET), "-q"]
    local = harness("run", *common, "--concurrency", "2", "--run-dir", str(tmp_path / "local"), timeout=600)
    assert local.returncode == 0, local.stderr[-2000:]
    with local_cluster([{"cua_sandbox": 1}] * 2) as cluster:
        remote = harness("run", *common, "--ray", cluster.address, "--run-dir", str(tmp_path / "ray"), timeout=600)
    assert remote.returncode == 0, remote.stderr[-2000:]
    assert summary(tmp_path / "ray") == summary(tmp_path / "local")
    assert summary(tmp_path / "ray")["success_rate"] == 1.0 and summary(tmp_path / "ray")["done"] == len(DOCKER_SUBSET)
    done = results(tmp_path / "ray")
    assert len({r["node"] for r in done.values()}) == 2
    finished = each_task_finished_once(tmp_path / "ray")
    assert len(finished) == len(DOCKER_SUBSET) and set(finished.values()) == {1}
    for domain, task_id in done:
        assert (tmp_path / "ray" / domain / task_id / "step_0.png").is_file()


@pytest.mark.docker
def test_a_worker_killed_mid_run_on_real_sandboxes_loses_no_task_and_leaves_no_container(
        tmp_path: Path, desktop_image: str) -> None:
    run_dir = tmp_path / "killed-worker-run"
    with local_cluster([{"cua_sandbox": 1}] * 2) as cluster:
        proc = start_run_until(["--benchmark", "desktop-basics", "--agent", "oracle", "--tasks", ",".join(DOCKER_SUBSET)],
                               run_dir, cluster.address, 1, within_s=300)
        try:
            # Both workers hold an attempt now (one slot each, tasks left): kill one, as the OOM killer would.
            pids = subprocess.run(["pgrep", "-f", "^ray::SandboxWorker"], capture_output=True, text=True).stdout.split()
            assert pids, "no worker process found"
            subprocess.run(["kill", "-9", pids[0]], check=True)
            _out, err = proc.communicate(timeout=600)
        finally:
            stop(proc)
    assert proc.returncode == 0, err[-2000:]
    done = results(run_dir)
    assert len(done) == len(DOCKER_SUBSET) and all(r["score"] == 1.0 for r in done.values())
    finished = each_task_finished_once(run_dir)
    assert len(finished) == len(DOCKER_SUBSET) and set(finished.values()) == {1}
    infra = [e for e in events(run_dir) if e["event"] == "infra_failure"]
    assert infra and all("died" in e.get("error", "") for e in infra)
    # The dead worker's containers were collected (by its node's next worker or the closing sweep).
    left = subprocess.run(["docker", "ps", "-a", "--filter", "label=cua-harness.run",
                           "--format", '{{.Label "cua-harness.run"}}'], capture_output=True, text=True).stdout.split()
    assert not [r for r in left if r.startswith(run_dir.name)], left
    # And its fork snapshots (a warm start's boot snapshot of the killed worker): images and folders.
    snapshots = subprocess.run(["docker", "images", "--filter", "label=cua-harness.snapshot", "--format",
                                '{{.Label "cua-harness.run"}} {{.Label "cua-harness.dir"}}'],
                               capture_output=True, text=True).stdout.splitlines()
    assert not [s for s in snapshots if s.startswith(run_dir.name)], snapshots

def test_node_image_decision_builds_a_missing_image_and_refuses_another_build() -> None:
    import anyio

    from harness.base.errors import SandboxError
    from harness.cluster.image_check import check_image, decide

    assert decide("img:a", "img:a", True).action == "ready"
    assert decide("img:a", "img:a", False).action == "build"
    assert decide("img:a", "img:b", True).action == "refuse"
    built: list[str] = []

    async def build() -> str:
        built.append("img:a")
        return "img:a"

    async def exists_not(tag: str) -> bool:
        return False

    async def main() -> None:
        d = await check_image("img:a", node_tag=lambda: "img:a", exists=exists_not, build=build, log=lambda m: None)
        assert d.action == "build" and built == ["img:a"]
        with pytest.raises(SandboxError, match="harness version"):
            await check_image("img:a", node_tag=lambda: "img:b", exists=exists_not, build=build, log=lambda m: None)
        assert built == ["img:a"]  # a node with other code never builds

    anyio.run(main)


def test_shipped_suite_unpacks_to_the_same_tasks(tmp_path: Path) -> None:
    from benchmarks.loader import load_suite
    from harness.cluster.suite_ship import pack_suite, unpack_suite

    suite = write_sim_suite(tmp_path / "suite", tasks=5, steps=1, domains=2)
    digest, blob = pack_suite(suite)
    assert pack_suite(suite)[0] == digest  # deterministic: one cache folder per suite content
    folder = unpack_suite(digest, blob, tmp_path / "cache")
    assert unpack_suite(digest, blob, tmp_path / "cache") == folder
    assert [t.id for t in load_suite(folder).tasks] == [t.id for t in load_suite(suite).tasks]
    with pytest.raises(ValueError, match="hash"):
        unpack_suite("0" * 64, blob, tmp_path / "cache2")


def test_killed_head_resumes_on_the_cluster_with_each_task_once(tmp_path: Path, cluster4) -> None:
    suite = write_sim_suite(tmp_path / "suite", tasks=24, steps=3, domains=2)
    run_dir = tmp_path / "run"
    proc = start_run_until(sim_oracle(suite), run_dir, cluster4.address, 3)
    try:
        proc.kill()  # SIGKILL: the head dies with attempts in flight; its workers die with it
        proc.communicate(timeout=30)
    finally:
        stop(proc)
    assert len(list(run_dir.glob("*/*/result.json"))) < 24
    resumed = harness("resume", str(run_dir), "-q", timeout=240)  # the recorded --ray address is reused
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    done = results(run_dir)
    assert len(done) == 24 and all(r["score"] == 1.0 for r in done.values())
    finished = each_task_finished_once(run_dir)
    assert len(finished) == 24 and set(finished.values()) == {1}
    assert summary(run_dir)["done"] == 24
    # Sized by the cluster, not recorded: the resumed session used every slot (4 nodes x 2), not the
    # default concurrency a recorded number would have capped it to.
    assert "concurrency" not in json.loads((run_dir / "run.json").read_text())["config"]
    assert [e["concurrency"] for e in events(run_dir) if e["event"] == "cluster"] == [8]


def test_rmcts_reflections_are_one_memory_across_nodes_kept_in_the_run_directory(tmp_path: Path) -> None:
    import re
    import sqlite3

    suite = write_sim_suite(tmp_path / "suite", tasks=8, steps=3, domains=1)
    sim = subprocess.Popen([sys.executable, "-m", "harness", "llm-sim", "--host", "127.0.0.1", "--port", "0",
                            "--policy", "search.mcts.sim_model:policy"], cwd=REPO, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        url = re.search(r"listening on (http://\S+)", sim.stdout.readline()).group(1)
        providers = tmp_path / "providers.json"
        providers.write_text(json.dumps({"default_model": "sim-model", "embedding_model": "sim-embed", "endpoints": [
            {"name": "llm-sim", "kind": "openai-compatible", "base_url": url, "models": ["*"]}]}))
        run_dir = tmp_path / "run"
        done = harness("run", "--benchmark", str(suite), "--agent", "rmcts", "--provider", "sim", "--ray", "local:2",
                       "--concurrency", "2", "--providers-file", str(providers), "--model", "sim-model",
                       "--agent-option", "iterations=4", "--run-dir", str(run_dir), "-q", timeout=300)
    finally:
        sim.kill()
        sim.wait()
    assert done.returncode == 0, done.stderr[-2000:]
    node = {t: r["node"] for (_, t), r in results(run_dir).items()}
    assert len(node) == 8 and len(set(node.values())) == 2
    # One memory, in the run directory as on one machine, written by the tasks of both nodes.
    rows = sqlite3.connect(run_dir / "reflections.sqlite").execute("SELECT id, task_id FROM reflections").fetchall()
    assert {t for _, t in rows} == set(node)
    outcome = {t: json.loads((run_dir / "sim" / t / "tree.json").read_text())["outcome"] for t in node}
    # A task saw reflections that tasks on the other node wrote: more rows than its own node had
    # made before its own (ids grow in creation order; it saw only rows made before it started).
    def own_node_rows_before(t: str) -> int:
        first = min(outcome[t]["reflections_stored"])
        return sum(1 for i, other in rows if i < first and node[other] == node[t])

    crossed = [t for t in node if outcome[t]["reflections_visible"] > own_node_rows_before(t)]
    assert crossed, {t: (node[t][:6], outcome[t]["reflections_visible"]) for t in node}
