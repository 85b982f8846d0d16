"""`--agent osworld:MODULE:CLASS`: an agent written for OSWorld's runner, run unchanged.

The contract is upstream's `lib_run_single.run_single_example` and `DesktopEnv.step`:
`agent.reset(runtime_logger, vm_ip=...)` (with the arguments its signature takes), a settle wait,
then per step `response, actions = agent.predict(instruction, obs)` with `obs` = {screenshot: PNG
bytes, accessibility_tree: XML or None, terminal, instruction}, each action executed as the env does
(pyautogui code string, `{"command": code}`, computer_13 dict, WAIT/DONE/FAIL), `pause` seconds
(`sleep_after_execution`) before the observation after it, until DONE/FAIL or `max_steps` predict
calls; a settle wait before the evaluator. traj.jsonl lines carry upstream's keys and values
(`step_num` is the predict call, so several actions of one call share it) and each screenshot is
`step_<n>_<timestamp>.png`, so scripts that read OSWorld's results tree read ours.

`predict` is synchronous and does its own HTTP: it runs in daemon threads behind one capacity
limiter sized to the run's concurrency, so the loop never waits on it. One instance per task in
flight (as upstream has one per env process), reused across tasks after `reset`; an instance whose
call was abandoned by a cancellation (task timeout, Ctrl-C) is dropped, since its thread may still
be running. Any exception from the class is that task's agent error.

Ours on purpose: a malformed action (unknown computer_13 type, bad key) is recorded as a WAIT step
with the reason and the rest of that reply is skipped, where upstream's controller raises and the
example dies; a dict with `action_type` runs as computer_13 whatever the run's action space.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from search.agent import Outcome, TaskEnv
from search.external.osworld_options import OSWorldAgentSpec
from vm.actions import ActionError, plan, special_of
from vm.types import Observation

log = logging.getLogger(__name__)

A11Y_TYPES = frozenset({"a11y_tree", "screenshot_a11y_tree", "som"})  # run.py: require_a11y_tree


class ExternalAgentError(RuntimeError):
    """The user's agent raised or broke the contract; the engine records it as that task's agent error.

    A plain RuntimeError on purpose: a `socket.timeout` from the agent's own HTTP must not pass for
    the task's deadline, nor a library's error for an infrastructure failure."""


class OSWorldAgent:
    """A `search.Agent` around an OSWorld-interface class (see the module docstring)."""

    needs_llm = False  # the class calls its model itself

    def __init__(self, spec: OSWorldAgentSpec, *, threads: int) -> None:
        self.spec = spec
        self.name = f"osworld:{spec.module}:{spec.class_name}"
        self.threads = max(1, threads)
        self.accessibility = spec.observation_type in A11Y_TYPES
        self._limiter: anyio.CapacityLimiter | None = None
        self._idle: list[Any] = []

    def describe(self) -> dict[str, Any]:
        return {"kind": "osworld", "class": f"{self.spec.module}.{self.spec.class_name}",
                "constructor": sorted(self.spec.kwargs), **self.spec.runner,
                "action_space": self.spec.action_space, "observation_type": self.spec.observation_type,
                "threads": self.threads}

    # -- threads -----------------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._limiter is None:  # made on the loop that uses it
            self._limiter = anyio.CapacityLimiter(self.threads)
        async with self._limiter:
            return await run_in_daemon_thread(functools.partial(fn, *args, **kwargs))

    async def _checkout(self) -> Any:
        if self._idle:
            return self._idle.pop()
        try:
            instance = await self._call(self.spec.cls, **self.spec.kwargs)
        except Exception as e:
            raise ExternalAgentError(f"{self.spec.class_name}(...) raised {type(e).__name__}: {e}") from e
        return instance

    # -- one task --------------------------------------------------------------------------------------

    async def solve(self, task: Any, env: TaskEnv) -> Outcome:
        runner = self.spec.runner
        outcome = Outcome(extra={"predict_calls": 0, "step_errors": []})
        instance = await self._checkout()
        reusable = True  # after an error too: the next task's reset makes it fit again
        folder = await env.ready_attempt_dir()
        logger, handler = _task_logger(task, folder)
        try:
            await self._reset(instance, logger, env)
            if runner["settle_s"]:
                await anyio.sleep(float(runner["settle_s"]))  # upstream: time.sleep(60) after env.reset
            obs = await self._observation(env, task.instruction)
            await self._loop(instance, task, env, obs, outcome)
            if runner["eval_settle_s"]:
                await anyio.sleep(float(runner["eval_settle_s"]))  # upstream: time.sleep(20) before evaluate
        except anyio.get_cancelled_exc_class():
            reusable = False  # a call of it may still run in its abandoned thread
            raise
        finally:
            if reusable:
                self._idle.append(instance)
            if handler is not None:
                logger.removeHandler(handler)
                handler.close()
        return outcome

    async def _loop(self, instance: Any, task: Any, env: TaskEnv, obs: dict[str, Any], outcome: Outcome) -> None:
        runner = self.spec.runner
        pause = float(runner["sleep_after_execution"])
        shots: set[str] = set()
        step_idx = 0
        done = False
        while not done and step_idx < runner["max_steps"]:
            response, actions, predict_info = await self._predict(instance, task.instruction, obs)
            outcome.extra["predict_calls"] += 1
            for action in actions:
                stamp = dt.datetime.now().strftime("%Y%m%d@%H%M%S")
                shot = _unique(f"step_{step_idx + 1}_{stamp}", shots)
                record: dict[str, Any] = {"step_num": step_idx + 1, "action_timestamp": stamp,
                                          "screenshot_file": shot, "action": action}
                if predict_info is not None:
                    record["predict_info"] = predict_info
                runnable = action["command"] if _is_command_dict(action) else action
                special = special_of(runnable)
                try:
                    plan(runnable)
                except ActionError as e:
                    message = f"step {step_idx + 1}: {e}"
                    outcome.extra["step_errors"].append(message)
                    _, after = await env.step("WAIT", response=response, info={"action_error": str(e), "proposed": action},
                                              pause=pause, observe=True, accessibility=self.accessibility,
                                              record={**record, "action": "WAIT"})
                    outcome.actions.append("WAIT")
                    outcome.steps += 1
                    obs = await self._observation(env, task.instruction, after)
                    break  # later actions of this reply may depend on the rejected one
                if special == "WAIT":
                    await anyio.sleep(pause)  # upstream sleeps `pause` for WAIT, and again after every action
                info = {"done": True} if special == "DONE" else {"fail": True} if special == "FAIL" else {}
                _, after = await env.step(runnable, response=response, info=info, pause=pause, observe=True,
                                          accessibility=self.accessibility, record=record)
                outcome.actions.append(runnable)
                outcome.steps += 1
                obs = await self._observation(env, task.instruction, after)
                if special in ("DONE", "FAIL"):
                    done = True
                    break
            step_idx += 1

    async def _predict(self, instance: Any, instruction: str, obs: dict[str, Any]) -> tuple[Any, list[Any], Any]:
        name = self.spec.class_name
        try:
            got = await self._call(instance.predict, instruction, obs)
        except Exception as e:
            raise ExternalAgentError(f"{name}.predict raised {type(e).__name__}: {e}") from e
        if not isinstance(got, tuple | list) or len(got) not in (2, 3):
            raise ExternalAgentError(f"{name}.predict returned {type(got).__name__}; expected (response, actions)")
        response, actions = got[0], got[1]
        if actions is None:
            actions = []
        if not isinstance(actions, list | tuple):
            raise ExternalAgentError(f"{name}.predict: actions must be a list, got {type(actions).__name__}")
        return response, list(actions), (got[2] if len(got) == 3 else None)

    async def _reset(self, instance: Any, logger: logging.Logger, env: TaskEnv) -> None:
        reset = getattr(instance, "reset", None)
        if not callable(reset):
            return
        args, kwargs = reset_arguments(reset, logger, vm_ip=_vm_ip(env))
        try:
            await self._call(reset, *args, **kwargs)
        except Exception as e:
            raise ExternalAgentError(f"{self.spec.class_name}.reset raised {type(e).__name__}: {e}") from e

    async def _observation(self, env: TaskEnv, instruction: str, seen: Observation | None = None) -> dict[str, Any]:
        """DesktopEnv._get_obs: a fresh look unless the step already took one."""
        obs = seen if seen is not None else await env.sandbox.observe(accessibility=self.accessibility)
        terminal = None
        if self.spec.runner["require_terminal"]:
            terminal = await env.sandbox.guest.terminal()
        return {"screenshot": obs.screenshot, "accessibility_tree": obs.accessibility_tree if self.accessibility else None,
                "terminal": terminal, "instruction": instruction}


async def run_in_daemon_thread(fn: Callable[[], Any]) -> Any:
    """`fn()` in a new daemon thread; cancelling the caller stops the wait, not the thread.

    Not anyio's worker threads: those are joined at interpreter exit, so a predict stuck in its own
    HTTP call (no timeout) would keep the finished run's process alive. A daemon thread dies with
    it. A thread per call costs ~0.1 ms next to a predict's seconds."""
    done = anyio.Event()
    box: dict[str, Any] = {}
    token = anyio.lowlevel.current_token()

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the waiting task, raised there
            box["error"] = e
        try:
            anyio.from_thread.run_sync(done.set, token=token)
        except Exception:  # the loop is gone or closing (the caller was cancelled): nobody waits
            pass

    threading.Thread(target=work, name="osworld-agent", daemon=True).start()
    await done.wait()
    if "error" in box:
        raise box["error"]
    return box["value"]


def reset_arguments(reset: Callable[..., Any], logger: logging.Logger, *, vm_ip: str | None) -> tuple[list[Any], dict[str, Any]]:
    """What upstream passes, cut to what `reset` takes: `reset(runtime_logger, vm_ip=...)`,
    `reset(runtime_logger)` or `reset()` (upstream tries them in turn, catching any error)."""
    try:
        params = list(inspect.signature(reset).parameters.values())
    except (TypeError, ValueError):
        return [logger], {}
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "vm_ip"]
    if positional or any(p.kind is p.VAR_POSITIONAL for p in params):
        args.append(logger)
    if any(p.name == "vm_ip" for p in params) or any(p.kind is p.VAR_KEYWORD for p in params):
        kwargs["vm_ip"] = vm_ip
    return args, kwargs


def _vm_ip(env: TaskEnv) -> str | None:
    """The sandbox's address when it has a TCP one (ours listen on a unix socket: None)."""
    base = getattr(getattr(env.sandbox, "info", None), "base_url", None)
    if not base or "://" not in base:
        return None
    host = base.split("://", 1)[1].split("/", 1)[0]
    return host.rsplit(":", 1)[0] if ":" in host else host


def _task_logger(task: Any, folder: Path | None) -> tuple[logging.Logger, logging.Handler | None]:
    """Upstream's per-example `runtime_logger`, writing runtime.log in the task folder (which must
    exist: the agent logs from its own thread, at any time)."""
    logger = logging.getLogger(f"desktopenv.example.{task.id}")
    logger.setLevel(logging.DEBUG)
    if folder is None:
        return logger, None
    handler = logging.FileHandler(folder / "runtime.log", delay=True)  # opened by the first record, in a thread
    logger.addHandler(handler)
    return logger, handler


def _is_command_dict(action: Any) -> bool:
    return isinstance(action, dict) and "action_type" not in action and isinstance(action.get("command"), str)


def _unique(stem: str, used: set[str]) -> str:
    """Upstream's name; a second action in the same second of the same step gets a suffix instead of
    overwriting the first one's screenshot."""
    name, k = f"{stem}.png", 1
    while name in used:
        k += 1
        name = f"{stem}_{k}.png"
    used.add(name)
    return name
