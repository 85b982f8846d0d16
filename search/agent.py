"""The agent seam: `Agent.solve(task, env) -> Outcome`, and the registry the CLI lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from harness.base.errors import ConfigError
from vm.types import ExecResult, Observation, Sandbox


@dataclass(slots=True)
class StepRecord:
    """One executed step, as the run store and the report see it."""

    action: Any
    response: str = ""
    reasoning: str = ""
    tokens: int = 0
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """What an agent hands back: the actions it took (the evaluator reads the last one)."""

    actions: list[Any] = field(default_factory=list)
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def last_action(self) -> Any:
        return self.actions[-1] if self.actions else None


@runtime_checkable
class TaskEnv(Protocol):
    """What the engine gives an agent for one task attempt."""

    task: Any  # benchmarks.schema.Task
    sandbox: Sandbox
    max_steps: int

    async def observe(self) -> Observation: ...

    async def step(self, action: Any, *, response: Any = "", reasoning: str = "", tokens: int = 0,
                   info: dict[str, Any] | None = None, pause: float = 0.0, observe: bool | None = None,
                   accessibility: bool = False, record: dict[str, Any] | None = None,
                   ) -> tuple[ExecResult, Observation | None]:
        """Execute one action in the sandbox, record it (with the screenshot after), return both.

        Special actions (WAIT/DONE/FAIL) are recorded and not sent; by default the observation
        after them is taken only for WAIT (`observe=True`: always). `pause` waits between action
        and observation; `record` replaces traj.jsonl keys (harness/task_env.py).
        """
        ...

    async def write_artifact(self, name: str, data: bytes) -> None: ...


@runtime_checkable
class Agent(Protocol):
    name: str

    async def solve(self, task: Any, env: TaskEnv) -> Outcome: ...


AgentFactory = Callable[[dict[str, Any]], Agent]
_AGENTS: dict[str, tuple[AgentFactory, str]] = {}


def register_agent(name: str, help: str) -> Callable[[AgentFactory], AgentFactory]:
    def deco(factory: AgentFactory) -> AgentFactory:
        _AGENTS[name] = (factory, help)
        return factory

    return deco


def _load_builtin_agents() -> None:
    import importlib

    for module in ("search.oracle", "search.prompt_agent", "search.mcts.agents"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise


def agent_names() -> dict[str, str]:
    _load_builtin_agents()
    return {name: help for name, (_, help) in sorted(_AGENTS.items())}


def make_agent(name: str, options: dict[str, Any] | None = None) -> Agent:
    _load_builtin_agents()
    if name not in _AGENTS:
        raise ConfigError(f"--agent {name!r}: unknown agent; expected one of {', '.join(sorted(_AGENTS))}")
    return _AGENTS[name][0](options or {})
