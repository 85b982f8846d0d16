"""The environment an agent acts in for one attempt: a sandbox plus the recorder of its steps.

Search agents get more through the same object: `fork(path)` (a sandbox at any tree state, see
search/mcts/state_restore.py), `clean_sandbox()` / `reset_sandbox()` (the home sandbox at the start
state, for the final replay), `evaluate()` (the task's evaluator on the home sandbox, for
upstream's re-replay-on-failure rule), and artifacts (`write_artifact`, `append_artifact`,
`previous_artifact` for resuming from an unfinished attempt's files).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from harness.base.errors import ConfigError
from search.mcts.state_restore import StateRestore
from vm.actions import is_special
from vm.types import ExecResult, Observation, Sandbox

Evaluator = Callable[[Any, list[Any]], Awaitable[Any]]  # (guest, actions) -> EvalResult


class SandboxTaskEnv:
    """Executes actions in one sandbox and records every step (traj.jsonl + step_<n>.png).

    With `sandboxes` (a search.mcts.state_restore.SandboxSource) the env owns its home sandbox:
    `aclose()` releases it and every fork, and `sandbox` always names the current home.
    """

    def __init__(self, task: Any, sandbox: Sandbox, attempt: Any, *, max_steps: int,
                 observe_accessibility: bool = True, sandboxes: Any = None,
                 evaluator: Evaluator | None = None, run_dir: Path | None = None) -> None:
        self.task = task
        self.max_steps = max_steps
        self._home = sandbox
        self._attempt = attempt
        self._observe_a11y = observe_accessibility
        self._source = sandboxes
        self._evaluator = evaluator
        self._restore: Any = None
        self.run_dir = run_dir if run_dir is not None else _run_dir_of(attempt)
        self.step_count = 0
        self.actions: list[Any] = []
        self.last_evaluation: tuple[int, Any] | None = None  # (step_count when scored, EvalResult)

    @property
    def attempt_dir(self) -> Path | None:
        """This attempt's task folder (traj.jsonl and step screenshots), when it has one."""
        folder = getattr(self._attempt, "dir", None)
        return Path(folder) if folder is not None else None

    async def ready_attempt_dir(self) -> Path | None:
        """`attempt_dir`, once it exists on disk: a fresh attempt's folder is made write-behind."""
        ready = getattr(self._attempt, "folder_ready", None)
        if ready is not None:
            await ready()
        return self.attempt_dir

    @property
    def sandbox(self) -> Sandbox:
        return self._restore.home if self._restore is not None else self._home

    async def observe(self) -> Observation:
        return await self.sandbox.observe(accessibility=self._observe_a11y)

    async def step(self, action: Any, *, response: Any = "", reasoning: str = "", tokens: int = 0,
                   info: dict[str, Any] | None = None, pause: float = 0.0, observe: bool | None = None,
                   accessibility: bool = False, record: dict[str, Any] | None = None,
                   ) -> tuple[ExecResult, Observation | None]:
        """`pause`: seconds between the action and the observation after it (OSWorld's
        sleep_after_execution); `observe`: True to look after every action (OSWorld's env does,
        DONE/FAIL included), None for the default (not after DONE/FAIL); `accessibility`: that
        observation carries the tree; `record`: traj.jsonl keys that replace ours (step_num,
        action_timestamp, screenshot_file, ...)."""
        self.step_count += 1
        self.actions.append(action)
        started = time.time()
        result = await self.sandbox.execute(action)
        special = is_special(action)
        if pause > 0:
            await anyio.sleep(pause)
        obs: Observation | None = None
        if observe if observe is not None else (not special or str(action).upper() == "WAIT"):
            obs = await self.sandbox.observe(accessibility=accessibility)
        record = {
            "step_num": self.step_count,
            "action_timestamp": time.strftime("%Y%m%d@%H%M%S", time.localtime(started)),
            "action": action,
            "response": response,
            "reward": 0,
            "done": special and str(action).upper() in ("DONE", "FAIL"),
            "info": {**(info or {}), "returncode": result.returncode, "error": result.error[-2000:]},
            "reasoning": reasoning,
            "tokens": tokens,
            "seconds": round(time.time() - started, 3),
            **(record or {}),
        }
        await self._attempt.record_step(record, obs.screenshot if obs else None)
        return result, obs

    # -- artifacts -------------------------------------------------------------------------------------
    async def write_artifact(self, name: str, data: bytes) -> None:
        await self._attempt.write_file(name, data)

    async def append_artifact(self, name: str, obj: Any) -> None:
        """Append one JSON line to a file in the task folder."""
        await self._attempt.append_jsonl(name, obj)

    async def previous_artifact(self, name: str) -> bytes | None:
        """`name` from this task's most recent unfinished attempt (moved to attempts/<n>/), if any."""
        folder = getattr(self._attempt, "dir", None)
        if folder is None:
            return None

        def read() -> bytes | None:
            root = Path(folder) / "attempts"
            try:
                numbers = sorted((int(p.name) for p in root.iterdir() if p.name.isdigit()), reverse=True)
            except (FileNotFoundError, NotADirectoryError):
                return None
            for n in numbers:
                path = root / str(n) / name
                if path.is_file():
                    return path.read_bytes()
            return None

        return await anyio.to_thread.run_sync(read)

    # -- search support --------------------------------------------------------------------------------
    def forks(self, *, max_sandboxes: int = 8, settle_s: float = 0.0, **restore: Any) -> Any:
        """This attempt's StateRestore (created on first call; later arguments are ignored).
        `restore`: StateRestore's snapshot options (mode, max_snapshots, snapshot_budget_mb)."""
        if self._restore is None:
            if self._source is None:
                raise ConfigError("this environment cannot fork sandboxes (the engine gave it no sandbox source)")
            self._restore = StateRestore(self._source, self._home, max_sandboxes=max_sandboxes, settle_s=settle_s,
                                         **restore)
        return self._restore

    @asynccontextmanager
    async def fork(self, path: list[Any], *, keep: bool = True) -> AsyncIterator[Any]:
        """`async with env.fork(path) as lease`: a sandbox whose state is `path` run from the start state
        (`keep`: the state may be wanted again, see StateRestore.at)."""
        async with self.forks().at(path, keep=keep) as lease:
            yield lease

    async def clean_sandbox(self) -> Sandbox:
        """The home sandbox at the start state, for a final replay through `step` (reset if it was used)."""
        if self._restore is not None:
            return await self._restore.clean_home()
        if self.step_count:
            await self.reset_sandbox()
        return self.sandbox

    async def reset_sandbox(self) -> Sandbox:
        """Replace the home sandbox by a fresh one at the start state (setup run again)."""
        restore = self.forks()
        self.last_evaluation = None
        return await restore.reset_home()

    async def evaluate(self, actions: list[Any] | None = None) -> Any:
        """Score the home sandbox's state now with the task's evaluator (`actions`: the trajectory
        that led there, default every step); the engine reuses the result when no step follows."""
        if self._evaluator is None:
            raise ConfigError("this environment has no evaluator")
        result = await self._evaluator(self.sandbox.guest, list(self.actions if actions is None else actions))
        self.last_evaluation = (self.step_count, result)
        return result

    def current_evaluation(self) -> Any:
        """The result of `evaluate()` if nothing ran since, else None."""
        if self.last_evaluation and self.last_evaluation[0] == self.step_count:
            return self.last_evaluation[1]
        return None

    async def aclose(self) -> None:
        """Release fork sandboxes and, when the env owns it, the home sandbox. Shielded."""
        with anyio.CancelScope(shield=True):
            if self._restore is not None:
                await self._restore.aclose()
            if self._source is not None:
                home = self.sandbox
                if home is not None:
                    await self._source.release(home)


def _run_dir_of(attempt: Any) -> Path | None:
    folder = getattr(attempt, "dir", None)
    return Path(folder).parent.parent if folder is not None else None
