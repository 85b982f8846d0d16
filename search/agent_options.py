"""An agent's options from the factory's dict: the run's keys it does not take dropped, a preset
under the user's values, one-line errors naming the option (shared by the built-in agents)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from harness.base.errors import ConfigError

T = TypeVar("T", bound=BaseModel)


def parse_agent_options(agent: str, model: type[T], options: Mapping[str, Any], *,
                        drop: Collection[str] = (), preset: Mapping[str, Any] | None = None) -> tuple[T, Any]:
    """(parsed options, the run's LLM client) from `options`; keys in `drop` are ignored."""
    opts = dict(options)
    llm = opts.pop("llm", None)
    for key in drop:
        opts.pop(key, None)
    values = {**(preset or {}), **{k: v for k, v in opts.items() if v is not None}}
    try:
        return model(**values), llm
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "options"
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"agent {agent}: unknown option '{where}'; expected one of "
                              f"{', '.join(model.model_fields)}") from None
        raise ConfigError(f"agent {agent}: option '{where}': {err['msg']} (got {err.get('input')!r})") from None
