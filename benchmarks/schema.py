"""Pydantic models of OSWorld task files (`evaluation_examples/examples/<domain>/<id>.json`).

Every field OSWorld defines is typed; unknown fields are kept (`extra="allow"`) so a task file
round-trips. Parameters of setup steps whose type we run are validated at load time, so a typo
in a task file fails when the suite loads, not halfway through a run.

Our extension: `solution`, a list of pyautogui code strings (or WAIT/DONE/FAIL) that solves the
task through the GUI; `validate` replays it to prove a task solvable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

SPECIAL_ACTIONS = ("WAIT", "DONE", "FAIL")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- setup step parameters (validated for the types we run) --------------------------------------


class DownloadFile(_Open):
    url: str = Field(min_length=1)
    path: str = Field(min_length=1)


class DownloadParams(_Open):
    files: list[DownloadFile]


class UploadFileEntry(_Open):
    local_path: str = Field(min_length=1)
    path: str = Field(min_length=1)


class UploadFileParams(_Open):
    files: list[UploadFileEntry]


class OpenParams(_Open):
    path: str = Field(min_length=1)
    timeout: float = Field(default=60.0, gt=0)  # extension: how long to wait for the window


class LaunchParams(_Open):
    command: str | list[str]
    shell: bool = False


class Until(_Open):
    """Re-run the command until one of these holds (OSWorld: any of the given keys)."""

    returncode: int | None = None
    stdout: str | None = None
    stderr: str | None = None


class ExecuteParams(_Open):
    command: str | list[str]
    shell: bool = False
    stdout: str = ""  # write the command's stdout to this file of the task's cache dir
    stderr: str = ""
    until: Until | None = None
    timeout: float = Field(default=120.0, gt=0)  # extension: per-run deadline in the guest
    until_timeout: float = Field(default=120.0, gt=0)  # extension: total budget for `until` polling


class WindowParams(_Open):
    window_name: str = Field(min_length=1)
    strict: bool = False
    by_class: bool = False


class SleepParams(_Open):
    seconds: float = Field(ge=0, le=3600)


class ChromeOpenTabsParams(_Open):
    urls_to_open: list[str]
    timeout: float = Field(default=60.0, gt=0)  # extension: per-URL load deadline (upstream: 60 s)


class ChromeCloseTabsParams(_Open):
    urls_to_close: list[str]


class BrowseHistoryItem(_Open):
    url: str = Field(min_length=1)
    title: str = ""
    visit_time_from_now_in_seconds: float = Field(default=0, ge=0)


class UpdateBrowseHistoryParams(_Open):
    history: list[BrowseHistoryItem]


STEP_PARAMETERS: dict[str, type[BaseModel]] = {
    "download": DownloadParams,
    "upload_file": UploadFileParams,
    "open": OpenParams,
    "launch": LaunchParams,
    "execute": ExecuteParams,
    "command": ExecuteParams,
    "activate_window": WindowParams,
    "close_window": WindowParams,
    "sleep": SleepParams,
    "chrome_open_tabs": ChromeOpenTabsParams,
    "chrome_close_tabs": ChromeCloseTabsParams,
    "update_browse_history": UpdateBrowseHistoryParams,
}


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {err['msg']}" if loc else err["msg"]


class SetupStep(_Open):
    """`{"type": T, "parameters": {...}}`; used in `config` and `evaluator.postconfig`."""

    type: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_parameters(self) -> SetupStep:
        model = STEP_PARAMETERS.get(self.type)
        if model is not None:
            try:
                model.model_validate(self.parameters)
            except ValidationError as e:
                raise PydanticCustomError(
                    "step_parameters", "parameters.{detail} (setup type {type})",
                    {"detail": _first_error(e), "type": self.type},
                ) from e
        return self

    def params(self) -> Any:
        """The typed parameters of a step type we run (KeyError for other types)."""
        return STEP_PARAMETERS[self.type].model_validate(self.parameters)


# --- evaluator ---------------------------------------------------------------------------------


class GetterSpec(_Open):
    """`{"type": X, ...}`: where a metric's input comes from. Fields beyond `type` depend on X."""

    type: str = Field(min_length=1)
    path: Any = None  # str, or list[str] with multi
    dest: Any = None
    multi: bool = False
    gives: list[int] | None = None
    command: str | list[str] | None = None
    shell: bool = False
    rules: Any = None


class MetricSpec(BaseModel):
    """One metric of an evaluator, with its getters and options (normalized from single or list form)."""

    index: int
    func: str
    result: GetterSpec | None
    expected: GetterSpec | None
    options: dict[str, Any]


def _parallel(value: Any, name: str, n: int) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise PydanticCustomError("parallel", "{name}: expected a list parallel to func ({n} entries)",
                                  {"name": name, "n": n})
    if len(value) != n:
        raise PydanticCustomError("parallel", "{name}: has {got} entries, func has {n}",
                                  {"name": name, "got": len(value), "n": n})


class Evaluator(_Open):
    func: str | list[str]
    result: GetterSpec | list[GetterSpec | None] | None = None
    expected: GetterSpec | list[GetterSpec | None] | None = None
    options: dict[str, Any] | list[dict[str, Any] | None] | None = None
    conj: Literal["and", "or"] = "and"
    postconfig: list[SetupStep] = Field(default_factory=list)

    @field_validator("result", "expected", mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        # OSWorld treats an empty getter block like a missing one.
        return None if v == {} or v == [] else v

    @field_validator("func")
    @classmethod
    def _func_names(cls, v: str | list[str]) -> str | list[str]:
        names = v if isinstance(v, list) else [v]
        if not names or not all(isinstance(n, str) and n for n in names):
            raise PydanticCustomError("func", "expected a metric name or a non-empty list of them")
        return v

    @model_validator(mode="after")
    def _shape(self) -> Evaluator:
        if isinstance(self.func, list):
            n = len(self.func)
            _parallel(self.result, "result", n)
            _parallel(self.expected, "expected", n)
            _parallel(self.options, "options", n)
            if self.result is None or any(r is None for r in self.result):  # type: ignore[union-attr]
                raise PydanticCustomError("result", "result: every metric needs a result getter")
        else:
            for name in ("result", "expected", "options"):
                if isinstance(getattr(self, name), list):
                    raise PydanticCustomError("single", "{name}: a single func takes a single {name}, not a list",
                                              {"name": name})
            if self.result is None and self.func != "infeasible":
                raise PydanticCustomError("result", "result: required unless func is 'infeasible'")
        return self

    def metric_specs(self) -> list[MetricSpec]:
        if isinstance(self.func, str):
            return [MetricSpec(index=0, func=self.func, result=self.result, expected=self.expected,  # type: ignore[arg-type]
                               options=dict(self.options or {}))]  # type: ignore[arg-type]
        n = len(self.func)
        results = self.result or [None] * n
        expected = self.expected or [None] * n
        options = self.options or [None] * n
        return [MetricSpec(index=i, func=f, result=results[i], expected=expected[i],  # type: ignore[index]
                           options=dict(options[i] or {}))  # type: ignore[index]
                for i, f in enumerate(self.func)]


# --- task -----------------------------------------------------------------------------------------


# Ids and domains name folders and files (results, caches): one plain path component each.
SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$"
SAFE_NAME_HINT = "a plain name (letters, digits, . _ @ + -; no path parts, at most 200 characters)"


class Task(_Open):
    id: str = Field(min_length=1)
    snapshot: str | None = None
    instruction: str = Field(min_length=1)
    source: str | list[str] | None = None
    config: list[SetupStep] = Field(default_factory=list)
    trajectory: str | None = None
    related_apps: list[str] = Field(default_factory=list)
    evaluator: Evaluator
    proxy: bool = False
    fixed_ip: bool = False
    possibility_of_env_change: str | None = None
    hint: str | None = None
    solution: list[str] | None = None  # extension: reference GUI actions

    # Set by the loader: where the task came from (not part of the file).
    _domain: str = PrivateAttr(default="")
    _path: Path | None = PrivateAttr(default=None)
    _assets_dir: Path | None = PrivateAttr(default=None)

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.match(SAFE_NAME, v):
            raise PydanticCustomError("safe_name", "expected {hint}, got {value}",
                                      {"hint": SAFE_NAME_HINT, "value": repr(v[:60])})
        return v

    @field_validator("solution")
    @classmethod
    def _solution(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            for i, a in enumerate(v):
                if not a.strip():
                    raise PydanticCustomError("solution", "entry {i}: empty action", {"i": i})
        return v

    @property
    def domain(self) -> str:
        return self._domain or self.snapshot or ""

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def assets_dir(self) -> Path | None:
        return self._assets_dir

    def bind(self, *, domain: str, path: Path | None = None, assets_dir: Path | None = None) -> Task:
        self._domain, self._path, self._assets_dir = domain, path, assets_dir
        return self

    @property
    def infeasible(self) -> bool:
        return self.evaluator.func == "infeasible"

    def setup_types(self) -> list[str]:
        return [s.type for s in [*self.config, *self.evaluator.postconfig]]
