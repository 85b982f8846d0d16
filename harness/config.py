"""RunConfig: every option of a run on one pydantic model (CLI flag > config file > default).

It is written into run.json; `RESULT_KEYS` are the fields whose change would change scores, so
resuming a run directory with a different value is refused.

`max_steps`, `action_space` and `observation_type` are run-level fields that the agent gets from
here; `--agent-option KEY=VALUE` for one of them sets the field when the field is not given, and
contradicting a given field is an error (never a silent loss of either).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.base.errors import ConfigError
from vm import providers

RESULT_KEYS = [
    "benchmark",
    "agent",
    "model",
    "agent_options",
    "max_steps",
    "task_timeout",
    "screen_width",
    "screen_height",
    "action_space",
    "observation_type",
]


# Agent options that are run-level fields: the field is the one source the agent is built from.
AGENT_OPTION_FIELDS = ("max_steps", "action_space", "observation_type")


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    benchmark: str = Field(description="built-in suite name or path to an OSWorld-layout folder")
    agent: str = "oracle"
    model: str | None = None
    agent_options: dict[str, Any] = Field(default_factory=dict)
    agent_path: str | None = Field(None, description="folder(s) put first on the import path for "
                                   "--agent osworld:MODULE:CLASS (os.pathsep-separated)")
    action_space: Literal["pyautogui", "computer_13"] = "pyautogui"
    observation_type: Literal["screenshot", "a11y_tree", "screenshot_a11y_tree", "som"] = "screenshot_a11y_tree"
    concurrency: int = Field(4, ge=1, le=512)
    sandboxes: int | None = Field(None, ge=1, le=2048, description="pool capacity (default: concurrency); tree "
                                  "search uses the extra sandboxes to hold tree states instead of replaying")
    run_dir: Path | None = None
    max_steps: int = Field(15, ge=1)
    task_timeout: float = Field(1800.0, gt=0)
    domains: list[str] = Field(default_factory=list)
    tasks: list[str] = Field(default_factory=list)
    test_list: str | None = None
    provider: str = Field("docker", description="sandbox provider: a name of vm.providers.names() or MODULE:ATTR")
    sim_latency_ms: float = Field(0.0, ge=0, description="sim provider: latency of each observe/execute")
    infra_retries: int = Field(2, ge=0, description="fresh-sandbox retries of an attempt after an infrastructure failure")
    screen_width: int = Field(1920, ge=320)
    screen_height: int = Field(1080, ge=240)
    providers_file: str | None = None
    cache: bool = True
    llm_cache: str | None = Field(None, description="LLM response cache file; default <run_dir>/llm_cache.sqlite. "
                                  "Point a new run at an earlier run's cache to replay instead of paying")
    quiet: bool = False
    desktop: Literal["osworld", "light"] = Field("osworld", description="sandbox desktop: osworld (GNOME Shell as "
                                                 "on OSWorld's VM) or light (openbox)")
    warm_start: bool | None = Field(None, description="Docker: start sandboxes as forks of one snapshot of a "
                                    "freshly booted one (~1 s instead of a 2.7 s GNOME boot; they share its guest "
                                    "token); fresh starts where forks fail. Default: on for the osworld desktop "
                                    "where this host can fork (CRIU), off for light (docs/design/fork.md)")
    record: bool = Field(False, description="screen recording per task (recording.mp4 in its folder), as OSWorld")
    sandbox_network: Literal["none", "bridge"] = Field("none", description="Docker network mode of each sandbox; "
                                                       "'bridge' only for tasks that need the internet (the "
                                                       "sandboxes' own network, inter-container traffic off)")
    ray: str | None = Field(None, description="run the attempts on a Ray cluster: HOST:PORT, auto, env "
                            "($RAY_ADDRESS) or local:N (docs/design/cluster.md); the head stays the only writer")
    sandbox_file_limit_mb: int = Field(1024, ge=1, description="largest file taken from a sandbox or a task "
                                       "download (streamed to disk); more ends the task with a size error")
    sandbox_message_limit_mb: int = Field(128, ge=1, description="largest response or WebSocket message from a "
                                          "sandbox held in memory; more ends the task with a size error")
    allow_private_urls: bool = Field(False, description="task downloads may reach loopback, link-local and "
                                     "private-network hosts (refused by default: task files are untrusted)")
    proxy: str | None = Field(None, pattern=r"^(https?|socks5h?)://[^\s/]+", description="proxy for tasks marked "
                              "proxy: true (Chrome's --proxy-server, http(s)_proxy for their commands), as OSWorld")

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, v: str) -> str:
        try:
            return providers.check_name(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None

    @model_validator(mode="before")
    @classmethod
    def _agent_option_fields(cls, values: Any) -> Any:
        """One source of truth for the options that are run-level fields too (see the module doc)."""
        if not isinstance(values, dict) or not isinstance(values.get("agent_options"), dict):
            return values
        options = values["agent_options"]
        for key in AGENT_OPTION_FIELDS:
            if key not in options:
                continue
            given = values.get(key)
            if given is None:
                values = {**values, key: options[key]}
            elif str(given) != str(options[key]):
                raise ValueError(f"--agent-option {key}={options[key]} contradicts {key} {given} of the run; "
                                 f"give it once (--{key.replace('_', '-')})")
        return values

    @field_validator("domains", "tasks", mode="before")
    @classmethod
    def _split_commas(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [p for p in (s.strip() for s in v.split(",")) if p]
        if isinstance(v, list):
            return [p.strip() for item in v for p in str(item).split(",") if p.strip()]
        return v


def make_config(values: dict[str, Any], *, source: str = "command line") -> RunConfig:
    """Validate; a bad value becomes one line naming the option and what was expected."""
    try:
        return RunConfig(**{k: v for k, v in values.items() if v is not None})
    except ValidationError as e:
        err = e.errors()[0]
        if not err["loc"] and err["type"] == "value_error":  # a check across fields: its own line
            raise ConfigError(f"{source}: {err['ctx']['error']}") from None
        where = ".".join(str(p) for p in err["loc"]) or "config"
        raise ConfigError(f"{source}: option '{where}': {err['msg']} (got {err.get('input')!r})") from None


def sandbox_settings(config: RunConfig) -> providers.SandboxSettings:
    """What the run's sandbox provider is made from."""
    return providers.SandboxSettings(
        screen_width=config.screen_width, screen_height=config.screen_height, network=config.sandbox_network,
        max_file_bytes=config.sandbox_file_limit_mb << 20, max_message_bytes=config.sandbox_message_limit_mb << 20,
        latency_s=config.sim_latency_ms / 1000, desktop=config.desktop, warm_start=config.warm_start)


def screen_mask(config: RunConfig) -> tuple[tuple[float, float, float, float], ...]:
    """What of the run's screenshots the LLM cache key leaves out: the desktop's clock, if any."""
    return providers.clock_regions(config.provider, sandbox_settings(config))


def parse_agent_options(pairs: list[str]) -> dict[str, Any]:
    """`--agent-option KEY=VALUE` pairs; a value is JSON when it parses, else the string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--agent-option {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
