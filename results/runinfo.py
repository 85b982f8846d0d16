"""What `run.json` holds and how a new session's config is checked against it.

All functions here are synchronous; the file reads (`.git/HEAD`, refs) are a handful of small
files, and RunStore calls them from its worker thread together with the rest of `open`.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import orjson

import harness.base as harness_base
from harness.base.errors import ConfigError
from harness.base.version import __version__
from results.redact import redact

# Fields of run.json's `agent` whose change would change scores (see `compare`).
AGENT_RESULT_KEYS = ("prompts.sha256", "table_counter")

RUN_FORMAT = 1
_MISSING = object()
_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def harness_version() -> str:
    return __version__


def _git_dir(start: Path) -> Path | None:
    for d in (start, *start.parents):
        dot_git = d / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():  # worktree or submodule: "gitdir: <path>"
            text = dot_git.read_text(errors="replace").strip()
            if text.startswith("gitdir:"):
                return (d / text.removeprefix("gitdir:").strip()).resolve()
    return None


def git_commit(start: Path | None = None) -> str | None:
    """Commit of the harness checkout, read from .git files (no `git` subprocess); None if unknown."""
    if start is None:
        start = Path(harness_base.__file__).resolve().parent
    try:
        gitdir = _git_dir(start)
        if gitdir is None:
            return None
        head = (gitdir / "HEAD").read_text().strip()
        if _SHA.fullmatch(head):
            return head  # detached HEAD
        if not head.startswith("ref:"):
            return None
        ref = head.removeprefix("ref:").strip()
        common = gitdir
        if (gitdir / "commondir").is_file():
            common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        for base in (gitdir, common):
            loose = base / ref
            if loose.is_file():
                sha = loose.read_text().strip()
                return sha if _SHA.fullmatch(sha) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[1] == ref and _SHA.fullmatch(parts[0]):
                    return parts[0]
    except OSError:
        return None
    return None


def _normal(value: Any) -> Any:
    """JSON-normal form so tuples equal lists and numbers compare as written to run.json."""
    return orjson.loads(orjson.dumps(value, default=str))


def get_path(config: Any, dotted: str) -> Any:
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested dicts under dotted names (lists are leaves)."""
    if not isinstance(config, dict) or (prefix and not config):
        return {prefix: config}
    out: dict[str, Any] = {}
    for k, v in config.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def _show(value: Any) -> str:
    if value is _MISSING:
        return "<unset>"
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 80 else text[:77] + "..."


def build_run_json(config: dict[str, Any], result_keys: list[str], commit: str | None,
                   agent: dict[str, Any] | None = None) -> dict[str, Any]:
    """`agent`: what the agent says it resolved its options to (profile, prompts and their hash),
    kept beside `config` (which stays exactly what the user asked for, so resume can re-read it)."""
    run = {
        "format": RUN_FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "harness_version": harness_version(),
        "git_commit": commit,
        "result_keys": list(result_keys),
        "config": _normal(redact(config)),
    }
    if agent is not None:
        run["agent"] = _normal(redact(agent))
    return run


def compare(
    stored: dict[str, Any], config: dict[str, Any], result_keys: list[str], *, where: Path, commit: str | None,
    agent: dict[str, Any] | None = None,
) -> dict[str, list[Any]]:
    """Refuse a config whose result keys differ; return the other changes as {key: [old, new]}.

    Both sides are compared in their redacted JSON form (run.json never holds the secrets).
    """
    old_cfg = stored.get("config")
    if not isinstance(old_cfg, dict):
        raise ConfigError(
            f"{where}: field 'config' is missing or not an object; not a run.json of this harness"
        )
    new_cfg = _normal(redact(config))
    differing = []
    for key in result_keys:
        old, new = get_path(old_cfg, key), get_path(new_cfg, key)
        if old != new:
            differing.append(f"{key}: {_show(old)} -> {_show(new)}")
    if differing:
        raise ConfigError(
            f"{where}: the run was started with a config that differs in keys that change results: "
            + "; ".join(differing)
            + " (restore them to resume, or use a new run directory)"
        )
    covered = tuple(result_keys)
    old_flat, new_flat = flatten(old_cfg), flatten(new_cfg)
    changes: dict[str, list[Any]] = {}
    for key in sorted(old_flat.keys() | new_flat.keys()):
        if any(key == c or key.startswith(c + ".") for c in covered):
            continue
        old, new = old_flat.get(key, None), new_flat.get(key, None)
        if old != new:
            changes[key] = [old, new]
    for meta, new in (("harness_version", harness_version()), ("git_commit", commit)):
        if stored.get(meta) != new:
            changes[meta] = [stored.get(meta), new]
    if agent is not None:
        new_agent = _normal(redact(agent))
        old_agent = stored.get("agent")
        if isinstance(old_agent, dict):
            # Another prompt text or another table counter changes what the model sees: a run that
            # mixed two would publish a number nobody can reproduce.
            moved = [f"agent.{k}: {_show(get_path(old_agent, k))} -> {_show(get_path(new_agent, k))}"
                     for k in AGENT_RESULT_KEYS if get_path(old_agent, k) != get_path(new_agent, k)]
            if moved:
                raise ConfigError(f"{where}: the agent resolved differently than when the run started: "
                                  + "; ".join(moved) + " (restore the prompts file, or use a new run directory)")
        if old_agent != new_agent:  # anything else (say a note's wording): journaled, not refused
            changes["agent"] = [old_agent, new_agent]
    return changes
