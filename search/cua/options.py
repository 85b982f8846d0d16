"""Option parsing shared by the computer-use agents: the run's keys they ignore, one-line errors."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from harness.base.errors import ConfigError

T = TypeVar("T", bound=BaseModel)
# The engine passes these to every agent; computer-use agents act through their tool and see screenshots.
_RUN_KEYS = ("llm", "max_steps", "action_space", "observation_type")


def parse_agent_options(agent: str, model: type[T], options: dict[str, Any]) -> tuple[T, Any]:
    opts = {k: v for k, v in options.items() if v is not None}
    llm = opts.pop("llm", None)
    for key in _RUN_KEYS:
        opts.pop(key, None)
    try:
        return model(**opts), llm
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "options"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"agent {agent}: unknown option '{where}'; expected one of "
                              f"{', '.join(model.model_fields)}") from None
        raise ConfigError(f"agent {agent}: option '{where}': {err['msg']} (got {err.get('input')!r})") from None
