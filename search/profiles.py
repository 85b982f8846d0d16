"""Named option sets of the prompt agent (`--agent-option profile=NAME`).

A profile is only defaults: every option it sets can still be given explicitly, and wins.

- `default`: this harness's own behaviour (docs/design/prompt-agent.md, "Changed on purpose").
- `osworld`: what OSWorld's runner (`run.py` + `lib_run_single.py` + `mm_agents/agent.py`) does
  by default, so a score can be compared with a published one: temperature 1.0 (run.py's
  default; the agent class's own default is 0.5), strict parsing, upstream's accessibility table
  and token cut, 60 s settle before the first observation, a provider error wastes the step, and
  the chat is reshaped per model family.
"""

from __future__ import annotations

from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    "default": {
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 1500,
        "settle_s": 0.0,
        "parsing": "ours",
        "linearization": "ours",
        "provider_errors": "raise",
        "message_format": "openai",
    },
    "osworld": {
        "temperature": 1.0,  # run.py --temperature
        "top_p": 0.9,  # run.py --top_p
        "max_tokens": 1500,  # run.py --max_tokens
        "settle_s": 60.0,  # lib_run_single: time.sleep(60) after env.reset
        "parsing": "osworld",
        "linearization": "osworld",
        "provider_errors": "wasted_step",
        "message_format": "auto",
    },
}
PROFILE_NAMES = tuple(PROFILES)


def profile_defaults(name: str) -> dict[str, Any]:
    if name not in PROFILES:
        raise ValueError(f"profile {name!r}: expected one of {', '.join(PROFILE_NAMES)}")
    return dict(PROFILES[name])
