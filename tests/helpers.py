"""Helpers shared by tests of several packages (tests/ is on pytest's import path).

- `harness(*args)`: `python -m harness ...` in a subprocess from the repository, as a user runs it.
- `sim_client(sim, ...)`: our LLM client pointed at a running llm-sim, with short retry backoffs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def harness(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def sim_client(sim: Any, cache_path: Path | None = None, *, enabled: bool | None = None, retry: dict | None = None,
               top: dict | None = None, **endpoint: object) -> Any:
    """An LLMClient on llm-sim `sim`; the response cache only with `cache_path` (or `enabled`)."""
    from harness.llm.client import LLMClient

    providers = {
        "default_model": "sim-model",
        "embedding_model": "sim-embed",
        "retry": {"base_s": 0.01, "cap_s": 0.05, **(retry or {})},
        "endpoints": [{"name": "sim", "kind": "openai-compatible", "base_url": sim.url, "timeout_s": 5.0, **endpoint}],
        **(top or {}),
    }
    return LLMClient.from_config(providers, cache_path=cache_path,
                                 cache_enabled=cache_path is not None if enabled is None else enabled, env={})
