"""The environment an agent acts in for one attempt: a sandbox plus the recorder of its steps."""

from __future__ import annotations

import time
from typing import Any

from vm.actions import is_special
from vm.types import ExecResult, Observation, Sandbox


class SandboxTaskEnv:
    """Executes actions in one sandbox and records every step (traj.jsonl + step_<n>.png)."""

    def __init__(self, task: Any, sandbox: Sandbox, attempt: Any, *, max_steps: int,
                 observe_accessibility: bool = True) -> None:
        self.task = task
        self.sandbox = sandbox
        self.max_steps = max_steps
        self._attempt = attempt
        self._observe_a11y = observe_accessibility
        self.step_count = 0
        self.actions: list[Any] = []

    async def observe(self) -> Observation:
        return await self.sandbox.observe(accessibility=self._observe_a11y)

    async def step(self, action: Any, *, response: str = "", reasoning: str = "", tokens: int = 0,
                   info: dict[str, Any] | None = None) -> tuple[ExecResult, Observation | None]:
        self.step_count += 1
        self.actions.append(action)
        started = time.time()
        result = await self.sandbox.execute(action)
        special = is_special(action)
        obs: Observation | None = None
        if not special or str(action).upper() == "WAIT":
            obs = await self.sandbox.observe(accessibility=False)
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
        }
        await self._attempt.record_step(record, obs.screenshot if obs else None)
        return result, obs

    async def write_artifact(self, name: str, data: bytes) -> None:
        await self._attempt.write_file(name, data)
