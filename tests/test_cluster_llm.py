"""LLM limits and the response cache hold across a Ray cluster (issue 16, item 2).

A local cluster of three worker nodes on loopback (harness/cluster/local.py); one caller actor
per node builds its client with `worker_llm_client` and calls llm-sim, which runs in this test
process on 127.0.0.1 and sees every request the cluster sends (the provider's view).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from harness.config import RunConfig
from harness.llm.client import LLMClient
from harness.llm.sim import SimConfig, SimFault, SimServer

REPO = Path(__file__).resolve().parents[1]
HAVE_RAY = importlib.util.find_spec("ray") is not None  # found without importing it (see the cluster fixture)


def providers(url: str, **endpoint: Any) -> dict[str, Any]:
    return {
        "default_model": "sim-model",
        "retry": {"base_s": 0.05, "cap_s": 0.2},
        "endpoints": [{"name": "sim", "kind": "openai-compatible", "base_url": url, "api_key": "sk-cluster-test-0000",
                       "timeout_s": 10.0, **endpoint}],
    }


def run_config(tmp: Path, url: str, *, cache: bool = False, **endpoint: Any) -> RunConfig:
    pfile = tmp / f"providers-{time.monotonic_ns()}.json"
    pfile.write_text(json.dumps(providers(url, **endpoint)))
    return RunConfig(benchmark="sim", model="sim-model", providers_file=str(pfile), cache=cache,
                     llm_cache=str(tmp / "llm_cache.sqlite"))


def msg(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


class Caller:
    """A stand-in for the cluster's worker actor: one LLM client built the way workers build it."""

    def __init__(self) -> None:
        self.llm: Any = None

    async def setup(self, config: dict[str, Any], services: Any) -> str:
        import ray

        from harness.cluster.llm_services import worker_llm_client

        if self.llm is not None:
            await self.llm.aclose()
        self.llm = worker_llm_client(RunConfig.model_validate(config), services)
        return ray.get_runtime_context().get_node_id()

    async def complete(self, text: str, timeout: float | None = None) -> dict[str, Any]:
        start = time.monotonic()
        with anyio.move_on_after(timeout if timeout is not None else 60) as scope:
            c = await self.llm.complete(msg(text), task_id="t")
            return {"choices": c.choices, "cached": c.cached, "s": time.monotonic() - start}
        return {"cancelled": scope.cancelled_caught, "s": time.monotonic() - start}

    async def fire(self, texts: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []

        async def one(text: str) -> None:
            out.append(await self.complete(text))

        async with anyio.create_task_group() as tg:
            for text in texts:
                tg.start_soon(one, text)
        return out

    async def timed(self, n: int, local_providers: dict[str, Any] | None = None) -> float:
        """Seconds per sequential call: through the leased client, or a plain local one."""
        llm = LLMClient.from_config(local_providers, cache_enabled=False, env={}) if local_providers else self.llm
        start = time.perf_counter()
        for i in range(n):
            await llm.complete(msg(f"timed {i} {local_providers is not None}"))
        took = (time.perf_counter() - start) / n
        if local_providers:
            await llm.aclose()
        return took

    async def usage(self) -> dict[str, Any]:
        return self.llm.task_usage("t")

    async def environ_holds(self, value: str) -> bool:
        import os

        return any(value in v for v in os.environ.values())


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    if not HAVE_RAY:
        pytest.skip("ray is not installed: pip install -e '.[ray]'")
    from harness.cluster.local import apply_loopback_env, local_cluster

    apply_loopback_env()  # before Ray is imported: the driver must not rewrite 127.0.0.1
    import ray
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    with local_cluster([{"cua_sandbox": 1}] * 3, cpus_per_node=1) as c:
        ray.init(address=c.address, logging_level="WARNING", log_to_driver=False)
        try:
            yield c
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def callers(cluster: Any) -> list[Any]:
    """One caller actor pinned to each worker node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return [ray.remote(Caller).options(num_cpus=0, resources={"cua_sandbox": 0.1},
                                       scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
            for node in cluster.node_ids]


async def setup_all(callers: list[Any], config: RunConfig, services: Any) -> list[str]:
    with anyio.fail_after(60):
        return [await c.setup.remote(config.model_dump(mode="json"), services) for c in callers]


async def settled_stats(services: Any) -> dict[str, Any]:
    """The limiter's stats once every lease is back (releases are messages nobody waits for)."""
    with anyio.fail_after(10):
        while True:
            stats = await services.stats()
            if stats["leases"] == 0:
                return stats
            await anyio.sleep(0.05)


def fast_settings() -> Any:
    from harness.cluster.service_link import LinkSettings

    return LinkSettings(wait_s=5.0, rpc_timeout_s=10.0, lease_grace_s=2.0, housekeeping_s=0.25)


@pytest.mark.ray
async def test_rpm_limit_holds_across_nodes_and_the_cluster_runs_near_it(
        cluster: Any, callers: list[Any], tmp_path: Path) -> None:
    from harness.cluster.llm_services import start_llm_services

    rpm, window = 10, 1.0
    # The server enforces the same limit: any excess shows up as a 429.
    async with SimServer(SimConfig(rpm=rpm, window_s=window)) as sim:
        config = run_config(tmp_path, sim.url, rpm=rpm, window_s=window, burst_s=0.1, max_in_flight=64)
        services = start_llm_services(config, tmp_path, settings=fast_settings())
        try:
            nodes = await setup_all(callers, config, services)
            assert len(set(nodes)) == 3
            with anyio.fail_after(60):
                per_node = [c.fire.remote([f"node {i} call {k}" for k in range(15)]) for i, c in enumerate(callers)]
                results = [await ref for ref in per_node]
            stats = await settled_stats(services)
        finally:
            await services.aclose()
        times = sorted(r.t for r in sim.records)
        statuses = {r.status for r in sim.records}
    assert [len(r) for r in results] == [15, 15, 15]
    assert len(times) == 45 and statuses == {200}  # no 429: the provider never saw the limit passed
    assert sim.max_in_window(window) <= rpm
    rate = (len(times) - 1) / (times[-1] - times[0]) * window
    print(f"\ncluster rate {rate:.2f} per window of {window}s (limit {rpm}); stats {stats['granted']} leases")
    assert rate >= 0.75 * rpm  # near the limit (the gate's margin is 0.1 s of each 1.1 s window)
    assert stats["granted"] == 45 and stats["leases"] == 0 and stats["in_flight"] == 0


@pytest.mark.ray
async def test_in_flight_cap_holds_across_nodes(cluster: Any, callers: list[Any], tmp_path: Path) -> None:
    from harness.cluster.llm_services import start_llm_services

    async with SimServer(SimConfig(latency_ms=150)) as sim:
        config = run_config(tmp_path, sim.url, max_in_flight=2)
        services = start_llm_services(config, tmp_path, settings=fast_settings())
        try:
            await setup_all(callers, config, services)
            start = time.monotonic()
            with anyio.fail_after(60):
                refs = [c.fire.remote([f"cap {i} {k}" for k in range(4)]) for i, c in enumerate(callers)]
                results = [await ref for ref in refs]
            took = time.monotonic() - start
        finally:
            await services.aclose()
        seen = sim.stats()
    assert sum(len(r) for r in results) == 12 and seen["requests"] == 12
    assert seen["max_in_flight"] == 2  # reached, never passed, though 3 nodes x 4 calls were ready at once
    assert took >= 6 * 0.15 * 0.9


@pytest.mark.ray
async def test_shared_cache_pays_once_across_nodes_and_a_local_run_replays_it(
        cluster: Any, callers: list[Any], tmp_path: Path) -> None:
    from harness.cluster.llm_services import start_llm_services

    answers = iter(f"answer {i}" for i in range(100))
    async with SimServer(SimConfig(latency_ms=300, policy=lambda r: [next(answers)])) as sim:
        config = run_config(tmp_path, sim.url, cache=True)
        cache_file = Path(config.llm_cache or "")
        # Paid by a local run first: the cluster replays it (same file, same schema).
        async with LLMClient.from_config(config.providers_file, cache_path=cache_file, default_model="sim-model") as local:
            before = await local.complete(msg("paid locally"), task_id="t")
        assert len(sim.records) == 1
        services = start_llm_services(config, tmp_path, settings=fast_settings())
        try:
            await setup_all(callers, config, services)
            with anyio.fail_after(60):
                # The same request from two nodes at once: one pays, the other waits for its answer.
                a, b = callers[0].complete.remote("same question"), callers[1].complete.remote("same question")
                first, second = await a, await b
                third = await callers[2].complete.remote("same question")  # later, from a third node
                replayed = await callers[2].complete.remote("paid locally")
                usage = await callers[2].usage.remote()
            stats = await services.stats()
        finally:
            await services.aclose()
        assert len(sim.records) == 2  # the local call + "same question" once
        assert first["choices"] == second["choices"] == third["choices"]
        assert sorted([first["cached"], second["cached"]]) == [False, True] and third["cached"]
        assert replayed["cached"] and replayed["choices"] == before.choices
        assert usage["cached_calls"] == 2 and usage["cost_usd"] == 0.0
        # One claim led; the other node waited for it inside the cache service; none left open.
        assert stats["cache"]["claims"] == 1 and stats["cache"]["waited"] >= 1 and stats["cache"]["open_claims"] == 0
        # After the services stop, a plain local client on the same file replays without a call.
        async with LLMClient.from_config(config.providers_file, cache_path=cache_file, default_model="sim-model") as local:
            again = await local.complete(msg("same question"), task_id="t")
        assert again.cached and again.choices == first["choices"]
        assert len(sim.records) == 2


@pytest.mark.ray
async def test_a_worker_killed_or_cancelled_while_holding_a_lease_does_not_leak_its_slot(
        cluster: Any, callers: list[Any], tmp_path: Path) -> None:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from harness.cluster.llm_services import start_llm_services

    def policy(request: dict[str, Any]) -> str:
        if "hang" in request["messages"][-1]["content"]:
            raise SimFault(hang=True)
        return "ok"

    async with SimServer(SimConfig(policy=policy, hang_s=60)) as sim:
        # One slot for the whole cluster; a send may take 10 s, so a lease lives at most 12 s.
        config = run_config(tmp_path, sim.url, max_in_flight=1, timeout_s=10.0)
        services = start_llm_services(config, tmp_path, settings=fast_settings())
        victim = ray.remote(Caller).options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
            cluster.node_ids[0], soft=False)).remote()
        try:
            await setup_all([victim, callers[1]], config, services)
            held = victim.complete.remote("hang forever")
            with anyio.fail_after(20):
                while True:  # until the victim holds the only slot and its request is at the server
                    if sim.records:
                        break
                    await anyio.sleep(0.02)
            ray.kill(victim, no_restart=True)
            with anyio.fail_after(12):  # the lease timeout is the backstop; owner probes are faster
                after_kill = await callers[1].complete.remote("after the kill")
            assert after_kill["choices"] == ["ok"]
            # Cancelled while holding the slot: released at once on the way out.
            with anyio.fail_after(20):
                cancelled = await callers[1].complete.remote("hang until cancelled", 1.0)
                after_cancel = await callers[1].complete.remote("after the cancel")
            stats = await settled_stats(services)
        finally:
            await services.aclose()
            del held
    print(f"\nslot back {after_kill['s']:.2f} s after the kill; {after_cancel['s'] * 1000:.0f} ms after the cancel")
    assert after_kill["s"] < 5.0  # found dead by the limiter's probe, well before the 12 s expiry
    assert cancelled["cancelled"] and after_cancel["choices"] == ["ok"] and after_cancel["s"] < 1.0
    assert stats["reclaimed"] == 1 and stats["leases"] == 0 and stats["in_flight"] == 0


@pytest.mark.ray
async def test_lease_round_trips_add_little_to_each_call(cluster: Any, callers: list[Any], tmp_path: Path) -> None:
    from harness.cluster.llm_services import start_llm_services

    async with SimServer(SimConfig()) as sim:
        config = run_config(tmp_path, sim.url, rpm=100_000, max_in_flight=8)
        services = start_llm_services(config, tmp_path, settings=fast_settings())
        try:
            await setup_all(callers[:1], config, services)
            with anyio.fail_after(60):
                await callers[0].timed.remote(5)  # warm both paths
                leased = await callers[0].timed.remote(60)
                local = await callers[0].timed.remote(60, providers(sim.url, rpm=100_000, max_in_flight=8))
        finally:
            await services.aclose()
    print(f"\nper call: leased {leased * 1000:.2f} ms, local {local * 1000:.2f} ms, "
          f"lease overhead {(leased - local) * 1000:.2f} ms")
    # Two loopback round trips to the head's limiter per call: a few ms (the figure is printed, and
    # measured by `bench engine --ray`); the bound is loose, the machine is shared. It still fails
    # if leasing waited on something it should not (a poll interval, a timeout).
    assert leased - local < 0.25


async def test_a_run_without_ray_imports_no_ray(tmp_path: Path) -> None:
    from benchmarks.sim_suite import write_sim_suite

    suite = write_sim_suite(tmp_path / "suite", tasks=1)
    script = (
        "import sys\n"
        "from harness.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print('LOADED', rc, 'harness.llm.client' in sys.modules,"
        " sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.') or m.startswith('harness.cluster')))\n"
    )
    async with SimServer(SimConfig(policy=lambda r: "```DONE```")) as sim:
        pfile = tmp_path / "providers.json"
        pfile.write_text(json.dumps(providers(sim.url)))
        with anyio.fail_after(120):
            proc = await anyio.run_process(
                [sys.executable, "-c", script, "run", "--benchmark", str(suite), "--agent", "prompt", "--provider", "sim",
                 "--providers-file", str(pfile), "--observation-type", "a11y_tree", "--max-steps", "2",
                 "--run-dir", str(tmp_path / "run"), "-q"], cwd=REPO, check=False)
        assert sim.records  # the run used its LLM client
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert "LOADED 0 True []" in out, out[-2000:]


@pytest.mark.ray
async def test_keys_are_forwarded_from_the_head_and_never_shown(
        cluster: Any, callers: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    from harness.cluster.llm_services import start_llm_services

    secret = "sk-forwarded-only-on-the-head-1234"
    # Set after the nodes started: only the head's forwarding can get it to the workers.
    monkeypatch.setenv("CLUSTER_TEST_KEY", secret)
    async with SimServer(SimConfig(api_key=secret)) as sim:
        config = run_config(tmp_path, sim.url, api_key="env:CLUSTER_TEST_KEY")
        services = start_llm_services(config, tmp_path, settings=fast_settings())
        try:
            await setup_all(callers[:1], config, services)
            with anyio.fail_after(30):
                answer = await callers[0].complete.remote("with the forwarded key")
            assert secret not in repr(services) and "CLUSTER_TEST_KEY" in repr(services)
            assert not await callers[0].environ_holds.remote(secret)  # the worker's os.environ never gets it
        finally:
            await services.aclose()
        assert answer["choices"] and [r.status for r in sim.records] == [200]
        # Not only a repr: nowhere Ray or the run writes or shows things. The session's logs and files
        # (every node's, they share the session folder), what Ray reports about actors (class, name,
        # creation arguments' metadata), and every file of the run's folder.
        session = Path(cluster.session_dir)
        assert (session / "logs").is_dir()
        assert _files_holding([session, tmp_path], secret.encode()) == []
        from ray._private import state

        assert secret not in repr(state.actors())
        # Without forwarding, a worker whose node lacks the variable fails with one clear line.
        services = start_llm_services(config, tmp_path, settings=fast_settings(), forward_keys=False)
        try:
            with pytest.raises(ray.exceptions.RayTaskError, match="environment variable CLUSTER_TEST_KEY is not set"):
                await setup_all(callers[:1], config, services)
        finally:
            await services.aclose()


def _files_holding(roots: list[Path], needle: bytes) -> list[Path]:
    def holds(path: Path) -> bool:
        try:
            return path.is_file() and needle in path.read_bytes()
        except OSError:  # a log rotated or a socket: nothing to read
            return False

    return [p for root in roots for p in root.rglob("*") if holds(p)]


async def test_a_lease_nobody_releases_expires_and_abandoned_ids_free_their_slot() -> None:
    """The limiter core without Ray: expiry, and abandon before, during and after a grant."""
    from harness.cluster.lease_limits import SharedLimiter
    from harness.cluster.service_link import LinkSettings
    from harness.llm.config import EndpointConfig

    limiter = SharedLimiter({"sim": EndpointConfig(max_in_flight=1, timeout_s=0.2)}, LinkSettings(lease_grace_s=0.1))
    assert (await limiter.acquire("a", "proc-1", "sim", "m", 10, 1.0))["state"] == "granted"
    assert (await limiter.acquire("b", "proc-2", "sim", "m", 10, 0.05))["state"] == "wait"  # the slot is held
    await anyio.sleep(0.35)
    assert limiter.reap() == 1 and limiter.totals["expired"] == 1
    assert (await limiter.acquire("b", "proc-2", "sim", "m", 10, 1.0))["state"] == "granted"
    assert limiter.release("a", 5)["state"] == "unknown"  # a late release frees nothing twice
    limiter.abandon("b")  # granted, then given up: released
    limiter.abandon("c")  # given up before its acquire arrived
    assert (await limiter.acquire("c", "proc-3", "sim", "m", 10, 1.0))["state"] == "abandoned"
    async with anyio.create_task_group() as tg:  # given up while waiting: the wait ends
        assert (await limiter.acquire("d", "proc-4", "sim", "m", 10, 1.0))["state"] == "granted"
        replies: list[str] = []

        async def wait_for_e() -> None:
            replies.append((await limiter.acquire("e", "proc-5", "sim", "m", 10, 5.0))["state"])

        tg.start_soon(wait_for_e)
        await anyio.sleep(0.05)
        limiter.reap({"proc-5"})  # its owner died while waiting
    assert replies == ["abandoned"]
    stats = limiter.stats()
    assert stats["in_flight"] == 1 and stats["waiting"] == 0  # only "d" holds the slot
    with pytest.raises(Exception, match="endpoint 'nope' is not in the run's providers config"):
        await limiter.acquire("f", "proc-6", "nope", "m", 10, 1.0)
