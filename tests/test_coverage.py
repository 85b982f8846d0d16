"""`tasks check` tells the truth: ready means every app is in the image, network needs are named,
`proxy: true` is not a blocker, and the run's --proxy / --sandbox-network options reach the
launch step and the Docker provider."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from test_tasks_fakeguest import FakeGuest

from benchmarks.context import RunContext
from benchmarks.downloads import HostFiles
from benchmarks.loader import load_suite
from benchmarks.schema import Task
from benchmarks.setup_steps import run_task_setup
from benchmarks.task_apps import ANY_LIBREOFFICE, BASE_DESKTOP, app_key, apps_of
from benchmarks.task_network import network_needs
from harness.commands.run import add_run_options, config_from_args
from harness.commands.tasks import check_suite
from harness.config import RunConfig
from harness.runner import make_provider
from scoring.app_inventory import AppInventory, load_inventory
from scoring.coverage import assess

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "osworld-sample"
needs_sample = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"OSWorld sample not found at {SAMPLE}")
FULL_OFFICE = AppInventory(source="test", apps=frozenset({"chrome", "gimp", "vlc", "thunderbird", "terminal",
                                                         "libreoffice_calc", "libreoffice_writer", "libreoffice_impress",
                                                         "file_manager"}),
                           unavailable={"vscode": "not packaged"})


def task(**fields: Any) -> Task:
    data = {"id": "t", "instruction": "do it", "evaluator": {"func": "infeasible"}, **fields}
    return Task.model_validate(data).bind(domain="os")


def never_cached(url: str) -> bool:
    return False


def test_every_osworld_related_app_spelling_maps_to_a_manifest_key_or_is_unknown() -> None:
    expected = {
        "chrome": "chrome", "Chrome": "chrome", "browser": "chrome",
        "libreoffice_calc": "libreoffice_calc", "libreoffice calc": "libreoffice_calc", "calc": "libreoffice_calc",
        "libreoffice_writer": "libreoffice_writer", "writer": "libreoffice_writer", "Writer": "libreoffice_writer",
        "libreoffice_impress": "libreoffice_impress", "libreoffice": ANY_LIBREOFFICE,
        "vscode": "vscode", "vs_code": "vscode", "gimp": "gimp", "thunderbird": "thunderbird", "vlc": "vlc",
        "terminal": "terminal", "os": BASE_DESKTOP, "OS": BASE_DESKTOP, "pdf": None, "image": None,
    }
    for name, key in expected.items():
        assert app_key(name) == key, name
    for name in ("ubuntu_media_player", "picard"):
        with pytest.raises(KeyError):
            app_key(name)


def test_apps_implied_by_launch_and_execute_commands() -> None:
    t = task(related_apps=["os"], config=[
        {"type": "launch", "parameters": {"command": ["libreoffice", "--impress"]}},
        {"type": "launch", "parameters": {"command": "VLC_VERBOSE=-1 vlc --no-audio", "shell": True}},
        {"type": "execute", "parameters": {"command": ["/bin/bash", "-c", "cd ~ && sudo code --install-extension x.vsix"]}},
        {"type": "launch", "parameters": {"command": ["/usr/bin/thunderbird"]}},
    ])
    assert set(apps_of(t).apps) == {BASE_DESKTOP, "libreoffice_impress", "vlc", "vscode", "thunderbird"}


def test_a_task_whose_app_is_missing_is_not_ready_and_the_reason_names_it() -> None:
    verdict = assess(task(related_apps=["vs_code"]), FULL_OFFICE, never_cached)
    assert verdict.ready is False
    assert verdict.reasons == ["app: vscode is not in the image (not packaged)"]
    unknown = assess(task(related_apps=["picard"]), FULL_OFFICE, never_cached)
    assert unknown.ready is False and "unknown app 'picard'" in unknown.reasons[0]
    launched = assess(task(related_apps=["os"], config=[{"type": "launch", "parameters": {"command": ["gimp"]}}]),
                      AppInventory(source="t", apps=frozenset({"chrome"})), never_cached)
    assert launched.ready is False and launched.reasons == ["app: gimp is not in the image"]


def test_proxy_true_is_not_a_blocker() -> None:
    assert assess(task(related_apps=["os"], proxy=True), FULL_OFFICE, never_cached).ready == "offline"


def test_network_needs_come_from_uncached_downloads_fetching_commands_and_live_pages(tmp_path: Path) -> None:
    url = "https://example.org/files/data.xlsx"
    t = task(related_apps=["os"], config=[{"type": "download", "parameters": {"files": [{"url": url, "path": "d.xlsx"}]}}])
    cache = HostFiles(tmp_path)
    verdict = assess(t, FULL_OFFICE, lambda u: cache.cache_path(u).is_file())
    assert verdict.ready == "network" and "example.org/files/data.xlsx is not in the download cache" in verdict.reasons[0]
    cache.cache_path(url).parent.mkdir(parents=True)
    cache.cache_path(url).write_bytes(b"x")
    assert assess(t, FULL_OFFICE, lambda u: cache.cache_path(u).is_file()).ready == "offline"
    local = task(config=[{"type": "download", "parameters": {"files": [{"url": "http://127.0.0.1:8000/a", "path": "a"}]}}])
    assert network_needs(local, never_cached) == []
    pip = task(config=[{"type": "execute", "parameters": {"command": "pip install numpy && echo ok", "shell": True}}])
    assert network_needs(pip, never_cached)[0].startswith("network: execute runs pip install")
    tabs = task(config=[{"type": "chrome_open_tabs", "parameters": {"urls_to_open": ["https://www.delta.com/"]}}])
    assert network_needs(tabs, never_cached) == ["network: opens https://www.delta.com/ in Chrome"]
    page = task(evaluator={"func": "exact_match", "result": {"type": "info_from_website", "url": "https://x.org/p"},
                           "expected": {"type": "rule", "rules": {"expected": "a"}}})
    assert network_needs(page, never_cached) == ["network: getter info_from_website loads https://x.org/p"]


@needs_sample
def test_no_sample_task_is_ready_whose_app_is_missing_from_the_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"apps": {k: {"version": "1", "commands": []} for k in ["chrome", "gimp", "vlc",
                                   "thunderbird", "libreoffice_calc", "libreoffice_writer", "terminal", "file_manager"]},
                                    "unavailable": {"vscode": "not packaged"}}))
    inventory = load_inventory(manifest)
    rows = {r["id"]: r for r in check_suite(SAMPLE, test_list=SAMPLE / "test_small.json", inventory=inventory)}
    assert len(rows) == 39
    for r in rows.values():
        if r["ready"] is not False:
            assert all(inventory.has("" if a == "desktop" else a) for a in r["apps"]), r
    vscode = [r for r in rows.values() if r["domain"] == "vs_code"]
    assert vscode and all(r["ready"] is False for r in vscode)
    assert all("app: vscode is not in the image (not packaged)" in r["reasons"] for r in vscode)
    # Impress is missing from this manifest: no impress task is ready, whatever its metrics.
    assert all(r["ready"] is False and any("libreoffice_impress" in x for x in r["reasons"])
               for r in rows.values() if r["domain"] == "libreoffice_impress")
    # The sample has proxy: true tasks; none is blocked by the flag.
    proxied = {t.id for t in load_suite(SAMPLE, test_list=SAMPLE / "test_small.json") if t.proxy}
    assert proxied and not any("proxy" in x for i in proxied for x in rows[i]["reasons"])


@needs_sample
def test_the_real_inventory_never_calls_a_task_ready_whose_app_it_lacks() -> None:
    inventory = load_inventory()
    for r in check_suite(SAMPLE, test_list=SAMPLE / "test_small.json", inventory=inventory):
        if r["ready"] is not False:
            assert all(inventory.has("" if a == "desktop" else a) for a in r["apps"]), r


async def _launches(proxy: str | None, proxied_task: bool, tmp_path: Path) -> list[Any]:
    t = task(proxy=proxied_task, config=[
        {"type": "launch", "parameters": {"command": ["google-chrome", "--remote-debugging-port=1337"]}},
        {"type": "execute", "parameters": {"command": ["curl", "-sI", "http://127.0.0.1:1/"]}},
    ])
    guest = FakeGuest()
    await run_task_setup(t, guest, RunContext(work_root=tmp_path, proxy=proxy))
    return [c for c in guest.calls if c[0] in ("launch", "execute")]


async def test_run_proxy_reaches_chrome_and_commands_of_proxied_tasks_only(tmp_path: Path) -> None:
    proxy = "http://127.0.0.1:18888"
    calls = await _launches(proxy, True, tmp_path)
    assert calls[0][1] == ["google-chrome", "--remote-debugging-port=1337", f"--proxy-server={proxy}"]
    assert calls[1][1][:3] == ["env", f"http_proxy={proxy}", f"https_proxy={proxy}"] and calls[1][1][-1] == "http://127.0.0.1:1/"
    for unproxied in (await _launches(None, True, tmp_path), await _launches(proxy, False, tmp_path)):
        assert unproxied[0][1] == ["google-chrome", "--remote-debugging-port=1337"]
        assert unproxied[1][1] == ["curl", "-sI", "http://127.0.0.1:1/"]


def _parse(*argv: str) -> RunConfig:
    p = argparse.ArgumentParser()
    add_run_options(p)
    return config_from_args(p.parse_args(["--benchmark", "desktop-basics", *argv]))


def test_sandbox_network_maps_to_the_docker_network_mode_and_is_recorded() -> None:
    default = _parse()
    assert default.sandbox_network == "none" and default.proxy is None
    assert make_provider(default, "r1").profile.network == "none"
    bridged = _parse("--sandbox-network", "bridge", "--proxy", "http://127.0.0.1:3128")
    assert make_provider(bridged, "r2").profile.network == "bridge"
    recorded = bridged.model_dump(mode="json")  # what run.json stores
    assert recorded["sandbox_network"] == "bridge" and recorded["proxy"] == "http://127.0.0.1:3128"
    with pytest.raises(SystemExit):
        _parse("--sandbox-network", "host")
    from harness.base.errors import ConfigError

    with pytest.raises(ConfigError, match="proxy"):
        _parse("--proxy", "not a url")


def test_private_urls_and_sandbox_limits_are_run_options_recorded_in_run_json() -> None:
    default = _parse()
    assert default.allow_private_urls is False
    assert make_provider(default, "r1").profile.max_file_bytes == 1 << 30
    allowed = _parse("--allow-private-urls").model_copy(update={"sandbox_file_limit_mb": 10,
                                                                "sandbox_message_limit_mb": 2})
    recorded = allowed.model_dump(mode="json")  # what run.json stores
    assert recorded["allow_private_urls"] is True and recorded["sandbox_file_limit_mb"] == 10
    profile = make_provider(allowed, "r2").profile
    assert (profile.max_file_bytes, profile.max_message_bytes) == (10 << 20, 2 << 20)
