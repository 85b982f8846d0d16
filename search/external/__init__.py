"""Agents from outside the harness: OSWorld-interface classes (`osworld:MODULE:CLASS`) and
native agents found by entry point (group `cua_harness.agents`). docs/design/agent-api.md."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from harness.base.errors import ConfigError
from search.external.osworld_options import PREFIX, is_osworld_agent

__all__ = ["PREFIX", "build_external_agent", "is_external_agent"]

# Run settings an OSWorld agent also takes as constructor options: one value for both, or an error.
_SHARED = ("model", "action_space", "observation_type", "max_steps")


def is_external_agent(name: str) -> bool:
    return is_osworld_agent(name)


def build_external_agent(run: dict[str, Any], *, explicit: Collection[str]) -> Any:
    """The agent for `run` (a RunConfig as a dict; `explicit`: the fields the user set).

    An agent option that names a run setting the user also set explicitly must agree with it;
    otherwise the option wins (it is the agent's own setting)."""
    from search.external.osworld import OSWorldAgent
    from search.external.osworld_options import build_spec

    options = dict(run.get("agent_options") or {})
    for key in _SHARED:
        if key in options and key in explicit and run.get(key) is not None and options[key] != run[key]:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"--agent-option {key}={options[key]!r} conflicts with {flag} {run[key]!r}; give one")
    spec = build_spec(run["agent"], agent_path=run.get("agent_path"), options=options, model=run.get("model"),
                      action_space=run["action_space"], observation_type=run["observation_type"],
                      max_steps=run["max_steps"])
    return OSWorldAgent(spec, threads=int(run.get("concurrency") or 1))
