"""Who is at fault when a task fails, and which failures end the run instead of the task.

One classification for every path: the local engine, its attempt runner and a cluster worker
call `task_failure` on what they caught, so the same fault records the same `result.json` fields
(`error`, `fault`, `phase`, and `eval_error` when the evaluation could not score) wherever the
attempt ran. Faults:

- `task`: the task file is wrong (a bad step, a URL that is gone, a path that leaves its folder).
- `environment`: the sandbox, the network, a model API or the host failed (SandboxError after its
  retries, ProviderError, a host OSError): the same task may pass another time.
- `agent`: the agent (or its model's reply) failed or ran out of time.
- `harness`: our bug (an exception our code did not expect): never counted as the agent's 0.

Only the run's own infrastructure ends a run (`RunStopped`, one line): the run directory's disk
is full or read-only. Everything else ends one task; `resume` goes on from there.
"""

from __future__ import annotations

import errno
from typing import Any

from harness.base.errors import ConfigError, HarnessError, ProviderError, SandboxError, TaskError

TASK = "task"
ENVIRONMENT = "environment"
AGENT = "agent"
HARNESS = "harness"
FAULTS = (TASK, ENVIRONMENT, AGENT, HARNESS)

# Phases of an attempt, as `result.json`'s `phase` and the prefix of its `error`.
PHASES = ("setup", "agent", "evaluation", "attempt", "infrastructure", "timeout", "unsupported")

# errno values that mean the host cannot write at all: no task can succeed, so the run stops.
_RUN_FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class RunStopped(HarnessError):
    """The run's own infrastructure failed (disk full, read-only run directory): the run stops
    with this one line; `resume` continues once it is fixed."""


def first_line(e: BaseException) -> str:
    """The first line of `e`'s message."""
    return str(e).strip().splitlines()[0] if str(e).strip() else ""


def short(e: BaseException) -> str:
    """`Type: first line of the message`, at most 500 characters."""
    return f"{type(e).__name__}: {first_line(e)}"[:500]


def fault_of(e: BaseException, phase: str) -> str:
    """Who is at fault for `e`, raised during `phase` of an attempt."""
    if isinstance(e, TaskError):
        return TASK
    if isinstance(e, SandboxError | ProviderError | OSError | TimeoutError):
        return ENVIRONMENT
    if isinstance(e, ConfigError | HarnessError):
        return HARNESS
    return AGENT if phase == "agent" else HARNESS


def task_failure(e: BaseException, phase: str, *, fault: str | None = None) -> dict[str, Any]:
    """The result of an attempt that `e` ended during `phase`: score 0, the reason and who is at
    fault. An evaluation that could not score also sets `eval_error`: that 0 is not the agent's."""
    why = short(e)
    result: dict[str, Any] = {"score": 0.0, "error": f"{phase}: {why}", "fault": fault or fault_of(e, phase),
                              "phase": phase}
    if phase == "evaluation":
        result["eval_error"] = why
    return result


def run_fatal(e: BaseException, where: object = None) -> str | None:
    """The one-line reason when `e` must stop the whole run (the host cannot write), else None;
    `where` names the place when the error does not (the run directory)."""
    if isinstance(e, OSError) and e.errno in _RUN_FATAL_ERRNOS:
        place = getattr(e, "filename", None) or where
        where = f" ({place})" if place else ""
        return f"the host cannot write{where}: {e.strerror or e}; free space, then `python -m harness resume`"
    return None


__all__ = ["AGENT", "ENVIRONMENT", "FAULTS", "HARNESS", "PHASES", "TASK", "RunStopped", "fault_of", "first_line",
           "run_fatal", "short", "task_failure"]
