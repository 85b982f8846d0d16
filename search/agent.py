"""The agent seam: `Agent.solve(task, env) -> Outcome`, and the registry the CLI lists."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from harness.base.errors import ConfigError
from vm.types import ExecResult, Observation, Sandbox


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
    max_steps: int

    @property
    def sandbox(self) -> Sandbox: ...  # the attempt's sandbox now (a search may swap it for a fresh one)

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

    async def ready_attempt_dir(self) -> Path | None: ...  # the task folder, once on disk (None: none)


@runtime_checkable
class Agent(Protocol):
    name: str

    async def solve(self, task: Any, env: TaskEnv) -> Outcome: ...


AgentFactory = Callable[[dict[str, Any]], Agent]
_AGENTS: dict[str, tuple[AgentFactory, str]] = {}

# Packages add agents under this entry point group: `NAME = "package.module:factory"`, where
# `factory(options) -> Agent` (a `solve` agent) or a step agent (search/external/native.py).
# The built-in agents are listed there too (pyproject.toml).
ENTRY_POINT_GROUP = "cua_harness.agents"


def register_agent(name: str, help: str) -> Callable[[AgentFactory], AgentFactory]:
    def deco(factory: AgentFactory) -> AgentFactory:
        _AGENTS[name] = (factory, help)
        return factory

    return deco


def _load_builtin_agents() -> None:
    # Imported by name as well as by entry point: a checkout that was never pip-installed (or was
    # installed before the entry points existed) still has its built-in agents.
    import importlib

    for module in ("search.oracle", "search.prompt_agent", "search.mcts.agents", "search.cua.claude",
                   "search.cua.openai_cua"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def agent_names() -> dict[str, str]:
    _load_builtin_agents()
    names = {name: help for name, (_, help) in _AGENTS.items()}
    for name, ep in _entry_points().items():
        if name not in names:
            dist = getattr(getattr(ep, "dist", None), "name", None)
            names[name] = f"{ep.value} (entry point{f' of {dist}' if dist else ''})"
    names.setdefault("osworld:MODULE:CLASS", "an agent class written for OSWorld's runner, run unchanged "
                     "(--agent-path DIR; docs/design/agent-api.md)")
    return dict(sorted(names.items()))


def make_agent(name: str, options: dict[str, Any] | None = None) -> Agent:
    _load_builtin_agents()
    options = options or {}
    if name in _AGENTS:
        return _as_agent(name, _AGENTS[name][0](options), options)
    ep = _entry_points().get(name)
    if ep is None:
        known = sorted({*_AGENTS, *_entry_points()})
        raise ConfigError(f"--agent {name!r}: unknown agent; expected one of {', '.join(known)} "
                          "(or osworld:MODULE:CLASS)")
    try:
        factory = ep.load()
    except Exception as e:  # the package's import error, named with its entry point
        raise ConfigError(f"--agent {name!r}: entry point {ep.value} ({ENTRY_POINT_GROUP}) does not load: "
                          f"{type(e).__name__}: {e}") from e
    return _as_agent(name, factory(options), options)


def _as_agent(name: str, agent: Any, options: dict[str, Any]) -> Agent:
    """A `solve` agent as is; a step agent (search/external/native.py) inside its runner."""
    if callable(getattr(agent, "solve", None)):
        return agent
    if callable(getattr(agent, "step", None)):
        from search.external.native import StepAgentRunner

        return StepAgentRunner(agent, max_steps=int(options.get("max_steps") or 15))  # type: ignore[return-value]
    raise ConfigError(f"--agent {name!r}: its factory made a {type(agent).__name__}, which has neither "
                      "solve(task, env) nor step(episode, observation)")
