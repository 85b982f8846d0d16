"""`--agent prompt`: OSWorld's PromptAgent on our seams.

Each step: observe -> build the chat (system prompt + the last `max_trajectory_length` (observation,
reply) pairs + the current observation) -> one completion -> parse the reply into a list of
actions -> execute them in order, recording each (prompt hash, reply, action, tokens) -> stop at
DONE/FAIL or after `max_steps` model calls (upstream counts steps per call, not per action).

A reply we cannot parse, or an action that fails validation, is recorded as a WAIT step whose
`info` carries the error: the step counts, nothing runs in the sandbox, and the agent goes on
(upstream crashes the example on `None` actions). Provider errors end the task by raising; the
engine records the error and a score of 0. Upstream's one recovery is kept: when the prompt is
too long for the model, the call is retried once with only the system and current messages.

`profile=osworld` (search/profiles.py) switches the behaviours that make scores differ from
OSWorld's runner to upstream's: sampling defaults, strict parsing (search/parsing_osworld.py),
upstream's accessibility table and token cut (search/a11y.py, search/tokens.py), the settle
wait before the first observation, a provider error as a wasted step (recorded as a WAIT with an
empty reply and `info.no_action`), and per-family message shapes (search/adapters.py). The
system prompt can come from the user's own files (`prompts_from`, search/prompt_source.py).
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.base.errors import ConfigError, ProviderError
from search import prompts, tokens
from search.a11y import HEADER, A11yNode, A11yParseError, filter_nodes, osworld_table, table, trim_to_tokens
from search.adapters import adapt, resolve
from search.agent import Outcome, TaskEnv, register_agent
from search.parsing import SPECIALS, Parsed, parse_reply
from search.parsing_osworld import parse_reply_osworld
from search.profiles import profile_defaults
from search.prompt_source import (
    BUILTIN,
    DEFAULT_PASSWORD,
    PASSWORD_MASK,
    SYSTEM_PROMPT_FILE,
    PromptSet,
    check_shipped,
    load_prompt_set,
    sha256,
)
from search.som import apply_tags, draw_marks
from vm.types import Observation

log = logging.getLogger(__name__)

# Keys the run engine puts into every agent's options; everything else must be ours.
_ENGINE_KEYS = frozenset({"llm"})
_CONTEXT_TOO_LONG = re.compile(r"context[_ ]length|maximum context|context window|too many tokens|prompt is too long", re.I)


class PromptAgentOptions(BaseModel):
    """Options of `--agent prompt` (`--agent-option k=v`). Those left unset (None) take the
    profile's value (search/profiles.py); an explicit value always wins."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    profile: Literal["default", "osworld"] = "default"
    action_space: Literal["pyautogui", "computer_13"] = "pyautogui"
    observation_type: Literal["screenshot", "a11y_tree", "screenshot_a11y_tree", "som"] = "screenshot_a11y_tree"
    max_steps: int = Field(15, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    max_trajectory_length: int = Field(3, ge=0)
    a11y_tree_max_tokens: int = Field(10_000, ge=0)
    password: str = DEFAULT_PASSWORD
    image_detail: Literal["high", "low", "auto"] = "high"
    settle_s: float | None = Field(None, ge=0, description="wait before the first observation of a task")
    parsing: Literal["ours", "osworld"] | None = None
    linearization: Literal["ours", "osworld"] | None = None
    provider_errors: Literal["raise", "wasted_step"] | None = None
    message_format: Literal["auto", "openai", "claude", "gemini", "gemini-pro", "gemini-pro-vision"] | None = None
    prompts_from: str | None = Field(None, description="a prompts.py (read as data) or a folder of <NAME>.txt")

    @model_validator(mode="after")
    def _fill_from_profile(self) -> PromptAgentOptions:
        for key, value in profile_defaults(self.profile).items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        return self


@dataclass(slots=True)
class PreparedObservation:
    """One observation as the prompt shows it (kept for the history)."""

    image_b64: str | None = None
    table: str | None = None
    marks: list[A11yNode] = field(default_factory=list)
    note: str | None = None  # why the table is empty, when it is
    counter: str | None = None  # which token counter cut the table (tokens.COUNTER_*)
    _url: str | None = field(default=None, repr=False, compare=False)

    def data_url(self) -> str | None:
        """The screenshot as a data URL, built once: every request that shows this observation
        sends the same str object, whose hash Python caches (the request-hash memo relies on it)."""
        if self._url is None and self.image_b64 is not None:
            self._url = "data:image/png;base64," + self.image_b64
        return self._url


_PREPARE_INLINE_BYTES = 48 * 1024  # a small screenshot + tree: base64 and parse take < 0.1 ms


def _observation_bytes(obs: Observation) -> int:
    return len(obs.screenshot or b"") + len(obs.accessibility_tree or "")


def _cut(text: str, max_tokens: int, upstream: bool) -> tuple[str, str]:
    """(table, counter): upstream's token cut, or ours (whole rows, by the estimate)."""
    if upstream:
        return tokens.cut_to_tokens(text, max_tokens)
    return trim_to_tokens(text, max_tokens), tokens.COUNTER_ESTIMATE


def prepare_observation(obs: Observation, observation_type: str, a11y_max_tokens: int,
                        linearization: str = "ours") -> PreparedObservation:
    """Blocking (XML parse, PNG decode/encode, base64): run in a worker thread."""
    prepared = PreparedObservation()
    upstream = linearization == "osworld"
    xml = obs.accessibility_tree
    if observation_type in ("a11y_tree", "screenshot_a11y_tree"):
        if xml is None:
            prepared.table, prepared.note = HEADER, "accessibility tree unavailable"
        else:
            try:
                nodes = filter_nodes(xml, upstream=upstream) if xml.strip() else []
                full = (osworld_table if upstream else table)(nodes)
                prepared.table, prepared.counter = _cut(full, a11y_max_tokens, upstream)
            except A11yParseError as e:
                prepared.table, prepared.note = HEADER, str(e)
    image = obs.screenshot
    if observation_type == "som":
        try:
            marks = draw_marks(obs.screenshot, xml, upstream=upstream)
        except A11yParseError as e:
            marks = draw_marks(obs.screenshot, None, upstream=upstream)
            prepared.note = str(e)
        if xml is None:
            prepared.note = "accessibility tree unavailable: no marks"
        image, prepared.marks = marks.image, marks.nodes
        prepared.table, prepared.counter = _cut(marks.table(), a11y_max_tokens, upstream)
    if observation_type != "a11y_tree":
        prepared.image_b64 = base64.b64encode(image).decode("ascii")
    return prepared


def _user_turn(p: PreparedObservation, observation_type: str, *, current: bool, detail: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = [
        {"type": "text", "text": prompts.observation_text(observation_type, p.table, current=current)}
    ]
    if p.image_b64 is not None:
        content.append({"type": "image_url", "image_url": {"url": p.data_url(), "detail": detail}})
    return {"role": "user", "content": content}


def build_messages(system: str, history: list[tuple[PreparedObservation, str]], current: PreparedObservation,
                   observation_type: str, *, detail: str = "high") -> list[dict[str, Any]]:
    """OpenAI chat messages: system, then (user observation, assistant reply) pairs, then now."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": [{"type": "text", "text": system}]}]
    for obs, reply in history:
        messages.append(_user_turn(obs, observation_type, current=False, detail=detail))
        messages.append({"role": "assistant", "content": [{"type": "text", "text": reply}]})
    messages.append(_user_turn(current, observation_type, current=True, detail=detail))
    return messages


class PromptAgent:
    name = "prompt"

    def __init__(self, options: PromptAgentOptions, llm: Any = None, *, prompt_set: PromptSet | None = None) -> None:
        self.options = options
        self.llm = llm  # harness.llm.LLMClient; the engine may set it after construction
        self._cpu: anyio.CapacityLimiter | None = None
        # Fail at construction, not mid-run, on an impossible combination or a bad prompts file.
        prompts.system_prompt(options.observation_type, options.action_space)
        # `prompt_set`: the template the head read (a cluster worker never re-reads the path).
        self.prompt_set: PromptSet | None = (
            check_shipped(prompt_set, options.observation_type, options.action_space) if prompt_set is not None
            else load_prompt_set(options.prompts_from, options.observation_type, options.action_space))
        if options.model is not None:
            self._check_family(resolve(str(options.message_format), options.model))

    # -- what the run records --------------------------------------------------------------------------

    def prompt_info(self) -> dict[str, str]:
        """Which system prompt this agent uses: source, name and sha256 of the template text."""
        if self.prompt_set is not None:
            return self.prompt_set.describe()
        o = self.options
        # Ours is generated; its hash here is for the default 1920x1080 screen (computer_13 names the
        # screen size). Each step records the hash of the exact system message (`system_sha256`).
        text = prompts.system_prompt(o.observation_type, o.action_space, password=o.password)
        return {"source": BUILTIN, "name": f"search.prompts:{o.observation_type}/{o.action_space}",
                "sha256": sha256(text)}

    def token_counter(self) -> str:
        """The counter that cuts the accessibility table (tokens.COUNTER_*)."""
        if self.options.linearization == "osworld":
            return tokens.counter_name()
        return tokens.COUNTER_ESTIMATE

    def describe(self) -> dict[str, Any]:
        """The resolved behaviour, for run.json and the report."""
        o = self.options
        counter = self.token_counter()
        info: dict[str, Any] = {
            "profile": o.profile, "temperature": o.temperature, "top_p": o.top_p, "max_tokens": o.max_tokens,
            "settle_s": o.settle_s, "parsing": o.parsing, "linearization": o.linearization,
            "provider_errors": o.provider_errors, "message_format": o.message_format,
            "prompts": self.prompt_info(), "table_counter": counter,
        }
        if o.model is not None:
            info["message_family"] = resolve(str(o.message_format), o.model)
        if counter == tokens.COUNTER_ESTIMATE and o.linearization == "osworld":
            info["table_counter_note"] = tokens.why_estimate()
        return info

    def _check_family(self, family: str) -> None:
        if family == "gemini-pro" and self.options.observation_type != "a11y_tree":
            raise ValueError("message family 'gemini-pro' is text only: use observation_type a11y_tree "
                             "(or message_format gemini)")

    def _family(self) -> str:
        model = self.options.model or getattr(self.llm, "default_model", None)
        family = resolve(str(self.options.message_format), model)
        self._check_family(family)
        return family

    # -- the loop ---------------------------------------------------------------------------------------

    def _system(self, task: Any, obs: Observation, password: str) -> str:
        o = self.options
        if self.prompt_set is not None:
            base = self.prompt_set.render(password)
        else:
            base = prompts.system_prompt(o.observation_type, o.action_space, screen_size=obs.screen_size,
                                         password=password)
        return prompts.task_prompt(base, task.instruction)

    async def solve(self, task: Any, env: TaskEnv) -> Outcome:
        if self.llm is None:
            raise ConfigError("agent prompt: no LLM client (the run must provide one; see --providers)")
        o = self.options
        try:
            family = self._family()
        except ValueError as e:
            raise ConfigError(f"agent prompt: {e}") from None
        max_calls = getattr(env, "max_steps", None) or o.max_steps
        history: deque[tuple[PreparedObservation, str]] = deque(maxlen=max(1, o.max_trajectory_length))
        outcome = Outcome(extra={"llm_calls": 0, "step_errors": []})
        system: str | None = None
        system_hash = recorded_hash = ""
        obs: Observation | None = None
        if o.settle_s:
            # Upstream's runner sleeps after the reset so the desktop settles before it looks.
            await anyio.sleep(float(o.settle_s))
        for call in range(1, max_calls + 1):
            if obs is None or o.observation_type != "screenshot":
                obs = await env.observe()  # the post-action observation has no accessibility tree
            prepared = await self._prepare(obs)
            if system is None:
                system = self._system(task, obs, o.password)
                system_hash = sha256(system)
                # The file (and so every export) never shows a password the user set; it records
                # its own hash so a reader can tell it from the text the model saw.
                recorded = system if o.password == DEFAULT_PASSWORD else self._system(task, obs, PASSWORD_MASK)
                recorded_hash = sha256(recorded)
                if hasattr(env, "write_artifact"):
                    await env.write_artifact(SYSTEM_PROMPT_FILE, recorded.encode("utf-8"))
            past = list(history) if o.max_trajectory_length else []
            messages = build_messages(system, past, prepared, o.observation_type, detail=o.image_detail)
            info: dict[str, Any] = {"llm_call": call, "system_sha256": system_hash,
                                    "system_file_sha256": recorded_hash, "message_format": family}
            if prepared.counter:
                info["table_counter"] = prepared.counter
            if prepared.note:
                info["observation_note"] = prepared.note
            try:
                completion = await self._complete(messages, task, family)
            except ProviderError as e:
                if o.provider_errors != "wasted_step":
                    raise
                # Upstream's call returns "" on any failure: nothing parses, the step is spent.
                outcome.extra["llm_calls"] += 1
                history.append((prepared, prompts.NO_VALID_ACTION))
                obs = await self._record_error(env, outcome, call, "", 0, {**info, "model": o.model, "no_action": True},
                                               "provider_error", str(e)[:500])
                continue
            outcome.extra["llm_calls"] += 1
            outcome.prompt_tokens += completion.usage.prompt_tokens
            outcome.completion_tokens += completion.usage.completion_tokens
            outcome.cost_usd += completion.cost_usd
            reply = completion.text or ""
            parsed = self._parse(reply)
            history.append((prepared, self._history_text(reply, parsed)))
            info.update({
                "prompt_hash": completion.request_hash,
                "model": completion.model,
                "cached": completion.cached,
                "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens,
                "cost_usd": completion.cost_usd,
            })
            if parsed.notes:
                info["parse_notes"] = parsed.notes
            step_tokens = completion.usage.total_tokens
            if not parsed.ok:
                obs = await self._record_error(env, outcome, call, reply, step_tokens, info, "parse_error", parsed.error or "")
                continue
            if not parsed.actions:  # osworld parsing: nothing to run, the step still counts
                obs = await self._record_error(env, outcome, call, reply, step_tokens, {**info, "no_action": True},
                                               "nothing_to_run", "; ".join(parsed.notes) or "no action in the reply")
                continue
            screen, obs = obs.screen_size, None
            for index, raw in enumerate(parsed.actions):
                tokens_now = step_tokens if index == 0 else 0  # the call's tokens go on its first action only
                try:
                    action = self._finalize(raw, prepared, screen_size=screen)
                except ValueError as e:
                    obs = await self._record_error(env, outcome, call, reply, tokens_now,
                                                   {**info, "action_index": index, "proposed": raw}, "action_error", str(e))
                    break  # later actions of this reply may depend on the rejected one
                _, obs = await env.step(action, response=reply, tokens=tokens_now,
                                        info={**info, "action_index": index})
                outcome.actions.append(action)
                outcome.steps += 1
                if isinstance(action, str) and action in ("DONE", "FAIL"):
                    return outcome
        return outcome

    # -- helpers ------------------------------------------------------------------------------------

    def _parse(self, reply: str) -> Parsed:
        if self.options.parsing == "osworld":
            return parse_reply_osworld(reply, self.options.action_space)
        return parse_reply(reply, self.options.action_space)

    def _history_text(self, reply: str, parsed: Parsed) -> str:
        """What the history shows for this reply. Upstream: the reply (stripped) unless it is empty
        or its parse raised; ours: the reply only when it parsed."""
        if self.options.parsing == "osworld":
            return reply.strip() if reply and parsed.ok else prompts.NO_VALID_ACTION
        return reply.strip() if parsed.ok and reply.strip() else prompts.NO_VALID_ACTION

    async def _prepare(self, obs: Observation) -> PreparedObservation:
        o = self.options
        args = (obs, o.observation_type, o.a11y_tree_max_tokens, str(o.linearization))
        if o.observation_type != "som" and _observation_bytes(obs) <= _PREPARE_INLINE_BYTES:
            # Less work than the thread hop would cost (wake a worker, then the loop).
            return prepare_observation(*args)
        return await anyio.to_thread.run_sync(prepare_observation, *args, limiter=self._cpu_limiter())

    def _cpu_limiter(self) -> anyio.CapacityLimiter:
        """Threads for observation prep (XML, base64, PNG): CPU work under the GIL, so more threads
        than cores only add contention; shared by every task of the run (named limit)."""
        if self._cpu is None:
            self._cpu = anyio.CapacityLimiter(max(2, os.cpu_count() or 2))
        return self._cpu

    async def _complete(self, messages: list[dict[str, Any]], task: Any, family: str) -> Any:
        o = self.options
        kwargs: dict[str, Any] = {"model": o.model, "n": 1, "temperature": o.temperature, "top_p": o.top_p,
                                  "max_tokens": o.max_tokens, "task_id": getattr(task, "id", None)}
        shaped, overrides = adapt(messages, family)
        kwargs.update(overrides)
        try:
            return await self.llm.complete(shaped, **kwargs)
        except ProviderError as e:
            if e.retryable or len(messages) <= 2 or not _CONTEXT_TOO_LONG.search(str(e)):
                raise
            if o.parsing == "osworld" and family != "openai":
                raise  # upstream retries shorter only on its GPT path
            log.warning("task %s: prompt too long for the model; retrying without history", kwargs["task_id"])
            shorter, _ = adapt([messages[0], messages[-1]], family)
            return await self.llm.complete(shorter, **kwargs)

    def _finalize(self, action: Any, prepared: PreparedObservation, *, screen_size: tuple[int, int] | None) -> Any:
        """Som tags into code; computer_13 dicts validated now so a bad one is a step error."""
        if isinstance(action, str):
            if action in SPECIALS:
                return action
            if self.options.observation_type == "som":
                return apply_tags(action, prepared.marks, all_tags=self.options.parsing == "osworld")
            return action
        from vm.actions import ActionError, computer13_to_code

        try:
            computer13_to_code(action, screen_size=screen_size)
        except ActionError as e:
            raise ValueError(str(e)) from e
        return action

    async def _record_error(self, env: TaskEnv, outcome: Outcome, call: int, reply: str, tokens: int,
                            info: dict[str, Any], kind: str, message: str) -> Observation | None:
        """Record a step that ran nothing: a WAIT carrying the error, so the trajectory shows it."""
        outcome.extra["step_errors"].append(f"call {call}: {kind}: {message}")
        log.info("prompt agent call %d: %s: %s", call, kind, message)
        _, obs = await env.step("WAIT", response=reply, reasoning=f"{kind}: {message}", tokens=tokens,
                                info={**info, kind: message})
        outcome.actions.append("WAIT")
        outcome.steps += 1
        return obs


def make_prompt_agent(options: dict[str, Any]) -> PromptAgent:
    opts = dict(options)
    llm = opts.pop("llm", None)
    shipped = opts.pop("prompt_set", None)  # a cluster worker: the head's template, not a path
    for key in _ENGINE_KEYS:
        opts.pop(key, None)
    opts = {k: v for k, v in opts.items() if v is not None}
    try:
        parsed = PromptAgentOptions(**opts)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "options"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(PromptAgentOptions.model_fields)
            raise ConfigError(f"agent prompt: unknown option '{where}'; expected one of {allowed}") from None
        raise ConfigError(f"agent prompt: option '{where}': {err['msg']} (got {err.get('input')!r})") from None
    try:
        return PromptAgent(parsed, llm, prompt_set=shipped)
    except ValueError as e:
        raise ConfigError(f"agent prompt: {e}") from None


@register_agent("prompt", "OSWorld's PromptAgent: one model call per step, last-3 history "
                          "(options: profile=default|osworld, prompts_from, observation_type, action_space, "
                          "temperature, ...)")
def _prompt(options: dict[str, Any]) -> PromptAgent:
    return make_prompt_agent(options)
